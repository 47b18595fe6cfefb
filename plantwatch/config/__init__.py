"""Configuration files: device maps and plant configs, their schemas and validation."""
