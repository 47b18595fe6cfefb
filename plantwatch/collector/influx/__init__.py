"""InfluxDB output: the line-protocol data contract, the durable buffer, writers and the forwarder."""
