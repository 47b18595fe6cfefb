# plantwatch: one image for the collector, the alert service and the simulator
# (docker-compose.yml picks the command). Data (buffers, alert state, outbox) goes to /data.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md requirements-run.lock ./
COPY plantwatch ./plantwatch
# The versions the suite ran with (scripts/lock), then plantwatch itself.
RUN pip install --no-cache-dir --no-deps -r requirements-run.lock . && pip check \
    && useradd --system --create-home plantwatch \
    && mkdir -p /data && chown plantwatch /data
USER plantwatch
VOLUME ["/data"]
ENTRYPOINT ["plantwatch"]
CMD ["--help"]
