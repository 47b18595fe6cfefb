"""Modbus input: plan coalesced read requests, run them over a shared bus, decode the answers."""
