"""Benchmarks, each reporting a ratio against a baseline measured in the same run."""
