# plantwatch: one image for the collector, the alert service and the simulator
# (docker-compose.yml picks the command). Data (buffers, alert state, outbox) goes to /data.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md requirements-run.lock ./
COPY plantwatch ./plantwatch
# A font with Chinese glyphs for PDF reports (Debian's fonts-droid-fallback).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-droid-fallback \
    && rm -rf /var/lib/apt/lists/*
# The versions the suite ran with (scripts/lock), then plantwatch itself.
RUN pip install --no-cache-dir --no-deps -r requirements-run.lock . && pip check \
    && useradd --system --create-home plantwatch \
    && mkdir -p /data && chown plantwatch /data
USER plantwatch
VOLUME ["/data"]
ENTRYPOINT ["plantwatch"]
CMD ["--help"]
