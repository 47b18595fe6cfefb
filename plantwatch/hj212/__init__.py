"""The HJ 212-2017 uplink: plantwatch as the stack's data acquisition and transmission instrument,
reporting real-time, minute, hour and day data to environmental platforms (docs/hj212.md)."""
