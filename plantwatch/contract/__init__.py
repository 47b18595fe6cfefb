"""The wire formats, written once: InfluxDB measurements, tags and line protocol; the readings bus
(topic, encoder and decoder); Grafana annotation tags (docs/data-model.md)."""
