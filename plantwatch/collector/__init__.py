"""Collector: reads meters (Modbus now, MQTT later), decodes values and hands readings to sinks."""
