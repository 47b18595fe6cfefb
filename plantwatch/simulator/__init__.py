"""Device simulator: Modbus TCP servers on loopback serving every device map with plausible values."""
