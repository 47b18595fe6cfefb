#!/bin/bash
# Run once by the influxdb:2 image after its setup (docker-entrypoint-initdb.d): map the
# InfluxQL database name plantwatch and Grafana query (INFLUX_DATABASE) onto the bucket, so
# InfluxQL works on InfluxDB 2.x. The influx CLI is already configured with the admin token.
set -euo pipefail
bucket_id=$(influx bucket list --name "${DOCKER_INFLUXDB_INIT_BUCKET}" --hide-headers | cut -f1)
influx v1 dbrp create --bucket-id "${bucket_id}" --db "${INFLUX_DATABASE}" --rp autogen --default
