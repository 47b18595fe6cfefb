"""The reading: the one shape every source produces and every sink consumes (docs/data-model.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple, cast

from plantwatch.core.codecs import Value

GOOD = "good"


class Reading(NamedTuple):
    """One value of one field of one device at one instant, with its quality.

    `quality` is "good" or the reason the value is missing ("timeout", "exception 2
    ILLEGAL_ADDRESS", "decode error: ..."); `value` is None whenever quality is not good.
    Immutable; a NamedTuple because the collector makes one per value (3x cheaper to build
    than a frozen dataclass).
    """

    device: str
    field: str
    value: Value | None
    timestamp_ns: int
    quality: str = GOOD
    unit: str | None = None
    role: str | None = None

    @property
    def good(self) -> bool:
        """True when the value can be used."""
        return self.quality == GOOD


# A Reading from its seven fields in order, built in C: `Reading._make` without its Python frame
# (a fifth of the cost of a reading in the collector's decoding loops) and without its length
# check, so callers pass exactly seven fields.
reading_of = cast(Callable[[Iterable[Any]], Reading], partial(tuple.__new__, Reading))


@dataclass(slots=True)
class PollResult:
    """Everything one poll (or one MQTT message) of one device produced."""

    device: str
    readings: list[Reading] = field(default_factory=list)
    requests: int = 0
    started_ns: int = 0
    finished_ns: int = 0
    tags: dict[str, str] = field(default_factory=dict)  # from MQTT topic levels, beside the device's own
    polled: bool = True  # False for an MQTT message: it gets no plantwatch_poll summary

    @property
    def ok(self) -> bool:
        """True when every value is good."""
        return all(r.good for r in self.readings)

    @property
    def event_ns(self) -> int:
        """When the values were measured: the latest reading's time (the start when there is none)."""
        return max((r.timestamp_ns for r in self.readings), default=self.started_ns)
