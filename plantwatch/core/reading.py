"""The reading: the one shape every source produces and every sink consumes (docs/data-model.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from itertools import repeat
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


class GoodValues(NamedTuple):
    """The values of one request, every one good, measured at one instant: the readings they stand
    for, kept as columns until a consumer asks for `PollResult.readings`.

    The Modbus poller keeps a cleanly decoded response so, and line protocol is written straight
    from the columns (contract/influx.py): building a Reading per value was about a sixth of the
    producing thread's CPU in benchmarks/influx_ingest.py, where no consumer but the buffer ever
    looked at them.
    """

    device: str
    fields: tuple[str, ...]  # a tuple, so that field layouts can be looked up by it
    values: list[Value]
    timestamp_ns: int
    units: tuple[str | None, ...]
    roles: tuple[str | None, ...]

    def readings(self) -> Iterator[Reading]:
        """The Reading of each value, in order."""
        return map(reading_of, zip(
            repeat(self.device), self.fields, self.values, repeat(self.timestamp_ns), repeat(GOOD),
            self.units, self.roles,
        ))  # fmt: skip


good_values_of = cast(Callable[[Iterable[Any]], GoodValues], partial(tuple.__new__, GoodValues))


class PollResult:
    """Everything one poll (or one MQTT message) of one device produced.

    `readings` is the list of every value with its quality, in request order. Values a request
    decoded cleanly may be held as `GoodValues` columns instead (`add_good`); the readings are
    built from them the first time `readings` is read, and from then on the list is all there is.
    """

    __slots__ = (
        "_columns", "_good", "_good_count", "_readings", "device", "finished_ns", "polled", "requests",
        "started_ns", "tags",
    )  # fmt: skip

    def __init__(
        self,
        device: str,
        readings: list[Reading] | None = None,
        requests: int = 0,
        started_ns: int = 0,
        finished_ns: int = 0,
        tags: dict[str, str] | None = None,  # from MQTT topic levels, beside the device's own
        polled: bool = True,  # False for an MQTT message: it gets no plantwatch_poll summary
    ) -> None:
        self.device = device
        self._readings: list[Reading] = [] if readings is None else readings
        self._good: list[GoodValues] = []  # only while `_readings` is empty: order is kept
        self._good_count = 0  # values in `_good`
        # Columns are kept only until the list is handed out: appends through a reference to it
        # must land after every value added before them.
        self._columns = readings is None
        self.requests = requests
        self.started_ns = started_ns
        self.finished_ns = finished_ns
        self.tags: dict[str, str] = {} if tags is None else tags
        self.polled = polled

    @property
    def readings(self) -> list[Reading]:
        """Every value, good or with the reason it is missing (built from `good_values` once)."""
        if self._good:
            self._readings = [reading for good in self._good for reading in good.readings()]
            self._good, self._good_count = [], 0
        self._columns = False
        return self._readings

    @readings.setter
    def readings(self, readings: list[Reading]) -> None:
        self._readings, self._good, self._good_count, self._columns = readings, [], 0, False

    @property
    def good_values(self) -> tuple[GoodValues, ...]:
        """The columns of every value when all are still held so (all good); else empty."""
        return tuple(self._good)

    def add_good(self, good: GoodValues) -> None:
        """Add the values of a request that decoded cleanly, after those added so far."""
        if not self._columns:
            self._readings.extend(good.readings())
        else:
            self._good.append(good)
            self._good_count += len(good.values)

    @property
    def size(self) -> int:
        """How many values, good or bad, without building readings."""
        return len(self._readings) + self._good_count

    @property
    def ok(self) -> bool:
        """True when every value is good."""
        return all(r.good for r in self._readings)  # values still in columns are all good

    @property
    def event_ns(self) -> int:
        """When the values were measured: the latest reading's time (the start when there is none)."""
        times = [good.timestamp_ns for good in self._good] + [r.timestamp_ns for r in self._readings]
        return max(times, default=self.started_ns)

    def with_readings(self, readings: list[Reading]) -> PollResult:
        """A copy of this result holding `readings` instead."""
        return PollResult(
            self.device, readings, self.requests, self.started_ns, self.finished_ns, self.tags, self.polled
        )

    def __repr__(self) -> str:
        """Every reading, as `readings` would give; built aside, so the columns are kept (a repr in
        a log line or a debugger must not change which path the lines take)."""
        readings = [reading for good in self._good for reading in good.readings()] + self._readings
        return (
            f"PollResult(device={self.device!r}, readings={readings!r}, requests={self.requests}, "
            f"started_ns={self.started_ns}, finished_ns={self.finished_ns}, tags={self.tags!r}, "
            f"polled={self.polled})"
        )
