"""The InfluxDB output: durable buffer, writers (v1 /write, v2 API) and the forwarder between them."""
