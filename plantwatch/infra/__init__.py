"""What the collector and the alert service share to talk to the outside: the MQTT connection, the
durable buffer, the InfluxDB writers and the forwarder."""
