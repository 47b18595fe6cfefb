"""Poll one Modbus device: run its planned requests on its bus and decode every value with quality."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from itertools import repeat

from plantwatch.collector.modbus.clock import ClockError, DeviceClock
from plantwatch.collector.modbus.plan import ReadRequest, plan_requests
from plantwatch.collector.modbus.transport import FUNCTION_NAMES, ModbusBus, ReadError
from plantwatch.config.device_map import BIT_TABLES, DeviceMap, Register
from plantwatch.config.plant import DeviceConfig
from plantwatch.core.codecs import SpanDecoder, ValueSpec
from plantwatch.core.errors import DecodeError
from plantwatch.core.event_time import checked
from plantwatch.core.outage_log import OutageLog
from plantwatch.core.reading import GOOD, PollResult, Reading, good_values_of, reading_of

log = logging.getLogger(__name__)


def value_spec(reg: Register, request: ReadRequest) -> ValueSpec:
    """Where `reg` sits in the response to `request`, and how it is decoded."""
    return ValueSpec(
        reg.address - request.address,
        reg.type,
        reg.byte_order,
        bit=reg.bit,
        scale=reg.scale,
        offset=reg.offset,
        counter_bits=reg.counter.bits if reg.counter else None,
        length=reg.length,
    )


class ResponseDecoder:
    """Turns the words of one request's response into its values, one per register; the names,
    units and roles, and how the response is decoded, are looked up once, when the collector starts."""

    def __init__(self, device: str, request: ReadRequest) -> None:
        self.device = device
        self.names = tuple(reg.name for reg in request.registers)
        self.units = tuple(reg.unit for reg in request.registers)
        self.roles = tuple(reg.role.value if reg.role else None for reg in request.registers)
        self.bit_offsets: list[int] | None = None  # coils and discrete inputs: one bit per value
        self.span: SpanDecoder | None = None
        if request.table in BIT_TABLES:
            self.bit_offsets = [reg.address - request.address for reg in request.registers]
        else:
            self.span = SpanDecoder(request.count, [value_spec(reg, request) for reg in request.registers])

    def decode(self, words: Sequence[int] | Sequence[bool], timestamp: int, result: PollResult) -> None:
        """Add each register's value to `result`; a value that cannot be decoded gets the reason."""
        errors: dict[int, DecodeError] = {}
        if self.span is not None:
            values, errors = self.span.decode(words)
        else:
            values = [bool(words[at]) for at in self.bit_offsets or ()]
        if not errors:  # the common case: kept as columns, see GoodValues
            result.add_good(
                good_values_of((self.device, self.names, values, timestamp, self.units, self.roles))
            )
            return
        qualities = [f"decode error: {errors[n]}" if n in errors else GOOD for n in range(len(values))]
        result.readings.extend(map(reading_of, zip(
            repeat(self.device), self.names, values, repeat(timestamp), qualities, self.units, self.roles
        )))  # fmt: skip

    def missing(self, timestamp: int, reason: str, into: list[Reading]) -> None:
        """Append a bad reading per register: the request failed or was skipped for `reason`."""
        device = self.device
        for name, unit, role in zip(self.names, self.units, self.roles, strict=True):
            into.append(Reading(device, name, None, timestamp, reason, unit, role))


class ModbusDevicePoller:
    """Reads every register of one device per poll; one request failing never loses the others."""

    def __init__(
        self, device: DeviceConfig, device_map: DeviceMap, bus: ModbusBus, *, max_skew: float = 300.0
    ) -> None:
        self.device = device
        self.device_map = device_map
        self.clock = DeviceClock.of(device_map)
        self.max_skew_ns = int(max_skew * 1e9)
        self.bus = bus
        self.requests: list[ReadRequest] = plan_requests(device_map.registers, device.max_insert)
        self._decoders = [ResponseDecoder(device.id, request) for request in self.requests]
        self._outage = OutageLog(log)
        self._clock_outage = OutageLog(log)

    async def poll(self) -> PollResult:
        """One poll: every register gets a reading, good or with the reason it is bad."""
        result = PollResult(device=self.device.id, started_ns=time.time_ns())
        skip_reason: str | None = None
        for request, decoder in zip(self.requests, self._decoders, strict=True):
            timestamp = time.time_ns()
            if skip_reason is not None:
                decoder.missing(timestamp, skip_reason, result.readings)
                continue
            result.requests += 1
            try:
                words = await self.bus.read(
                    self.device.unit,
                    request.function,
                    request.address,
                    request.count,
                    self.device.timeout,
                )
            except ReadError as exc:
                self._log_failure(request, exc.reason)
                decoder.missing(timestamp, exc.reason, result.readings)
                if exc.fatal_for_poll:
                    skip_reason = exc.reason
                continue
            decoder.decode(words, timestamp, result)
        result.finished_ns = time.time_ns()
        if self.clock is not None:
            result.readings = self._device_time(result.readings, result.finished_ns)
        if result.ok:
            self._outage.recovered("device %s: polling again after failures", self.device.id)
        return result

    def _device_time(self, readings: list[Reading], now_ns: int) -> list[Reading]:
        """Every reading stamped with the device clock of this poll; `bad timestamp` when that clock
        is too far ahead; the poll times kept (logged once) when the clock cannot be read."""
        assert self.clock is not None
        try:
            device_ns = self.clock.read({r.field: r for r in readings})
        except ClockError as exc:
            if not exc.unread:  # a failed request is logged once already, by device and cause
                self._clock_outage.failure(
                    "device %s: clock unreadable (%s); its readings carry the poll time", self.device.id, exc
                )
            return readings
        self._clock_outage.recovered("device %s: clock readable again", self.device.id)
        # reading_of, not _replace: about a third of the cost, on every reading of every poll
        stamped = [reading_of((d, f, v, device_ns, q, u, r)) for d, f, v, _, q, u, r in readings]
        return checked(stamped, now_ns, self.max_skew_ns)[0]

    def _log_failure(self, request: ReadRequest, reason: str) -> None:
        """The first failure is an ERROR line; repeats are DEBUG until the device recovers."""
        self._outage.failure(
            "device %s (unit %d at %s): %s address %d count %d: %s",
            self.device.id,
            self.device.unit,
            self.device.endpoint.bus_key,
            FUNCTION_NAMES[request.function],
            request.address,
            request.count,
            reason,
        )
