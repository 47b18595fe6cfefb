"""Outage logging: one line when something starts failing, a summary every few minutes while it
lasts (the repeats go to DEBUG), one INFO line at recovery."""

from __future__ import annotations

import logging
import time

SUMMARY_S = 300.0  # while an outage lasts, one summary line this often


class OutageLog:
    """Keeps an outage to a few log lines instead of a flood (Home Assistant's modbus habit)."""

    def __init__(self, logger: logging.Logger, level: int = logging.ERROR) -> None:
        self.logger = logger
        self.level = level  # of the first line of an outage
        self.failing = False
        self.count = 0  # failures in the current outage
        self._since = 0.0
        self._summarised = 0.0

    def failure(self, message: str, *args: object) -> None:
        """Log a failure: `level` for the first of an outage, a WARNING summary every
        SUMMARY_S while it lasts, DEBUG for the other repeats."""
        now = time.monotonic()
        if not self.failing:
            self.failing, self.count, self._since, self._summarised = True, 1, now, now
            self.logger.log(self.level, message, *args)
            return
        self.count += 1
        if now - self._summarised >= SUMMARY_S:
            self._summarised = now
            self.logger.warning(
                f"{message} [still failing: {self.count} times in {now - self._since:.0f} s]", *args
            )
        else:
            self.logger.debug(message, *args)

    def recovered(self, message: str, *args: object) -> None:
        """Log the end of an outage once (INFO); nothing if there was none."""
        if self.failing:
            lasted = time.monotonic() - self._since
            self.logger.info(f"{message} [after {self.count} failure(s) in {lasted:.0f} s]", *args)
            self.failing = False
