"""Configuration files: device maps and plant configs, their schemas and validation."""

from plantwatch.config.device_map import DeviceMap, Register, load_device_map, resolve_map
from plantwatch.config.plant import DeviceConfig, PlantConfig, load_plant_config
from plantwatch.config.problems import ConfigError, Problem

__all__ = [
    "ConfigError",
    "DeviceConfig",
    "DeviceMap",
    "PlantConfig",
    "Problem",
    "Register",
    "load_device_map",
    "load_plant_config",
    "resolve_map",
]
