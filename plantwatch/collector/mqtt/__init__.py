"""MQTT input: topics to devices, payload decoding (JSON, plain values, Sparkplug B), the subscriber."""
