"""Outage logging: one ERROR when something starts failing, DEBUG while it lasts, one INFO at recovery."""

from __future__ import annotations

import logging


class OutageLog:
    """Keeps an outage to two log lines instead of a flood (Home Assistant's modbus habit)."""

    def __init__(self, logger: logging.Logger, level: int = logging.ERROR) -> None:
        self.logger = logger
        self.level = level  # of the first line of an outage
        self.failing = False

    def failure(self, message: str, *args: object) -> None:
        """Log a failure: `level` (ERROR) for the first of an outage, DEBUG for the repeats."""
        self.logger.log(logging.DEBUG if self.failing else self.level, message, *args)
        self.failing = True

    def recovered(self, message: str, *args: object) -> None:
        """Log the end of an outage once (INFO); nothing if there was none."""
        if self.failing:
            self.logger.info(message, *args)
            self.failing = False
