"""One logging policy for the whole process, libraries included."""

from __future__ import annotations

import logging

# Loud libraries: pymodbus logs every bad answer at ERROR with a hex dump (the pollers log each
# device's failures once, by device and cause); APScheduler logs every skipped tick (the
# collector counts them for the health report).
QUIETED = {"pymodbus": logging.CRITICAL, "apscheduler": logging.ERROR}


def configure_logging(level: str) -> None:
    """Root logging at `level` (DEBUG, INFO, WARNING, ERROR); the loud libraries quieted unless
    DEBUG is asked for."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger().level
    for name, quiet in QUIETED.items():
        logging.getLogger(name).setLevel(root if root <= logging.DEBUG else max(quiet, root))
