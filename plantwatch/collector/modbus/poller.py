"""Poll one Modbus device: run its planned requests on its bus and decode every value with quality."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from plantwatch.collector.modbus.clock import ClockError, DeviceClock
from plantwatch.collector.modbus.plan import ReadRequest, plan_requests
from plantwatch.collector.modbus.transport import FUNCTION_NAMES, ModbusBus, ReadError
from plantwatch.config.device_map import DeviceMap, Register
from plantwatch.config.plant import DeviceConfig
from plantwatch.core.codecs import Value, compile_decoder
from plantwatch.core.errors import DecodeError
from plantwatch.core.event_time import checked
from plantwatch.core.outage_log import OutageLog
from plantwatch.core.reading import GOOD, PollResult, Reading

log = logging.getLogger(__name__)


def register_decoder(reg: Register) -> Callable[[Sequence[int] | Sequence[bool]], Value]:
    """Decode and scale one register's value from the words (or bits) that hold it."""
    if reg.table in ("coil", "discrete"):
        return lambda bits: bool(bits[0])
    return compile_decoder(
        reg.type,
        reg.byte_order,
        bit=reg.bit,
        scale=reg.scale,
        offset=reg.offset,
        counter_bits=reg.counter.bits if reg.counter else None,
    )


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
        # Per request: (register, offset in the response, width, decoder), computed once.
        self._layouts = [
            [(reg, reg.address - req.address, reg.width, register_decoder(reg)) for reg in req.registers]
            for req in self.requests
        ]
        self._outage = OutageLog(log)
        self._clock_outage = OutageLog(log)

    async def poll(self) -> PollResult:
        """One poll: every register gets a reading, good or with the reason it is bad."""
        result = PollResult(device=self.device.id, started_ns=time.time_ns())
        skip_reason: str | None = None
        for request, layout in zip(self.requests, self._layouts, strict=True):
            timestamp = time.time_ns()
            if skip_reason is not None:
                self._record_bad(result, request, timestamp, skip_reason)
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
                self._record_bad(result, request, timestamp, exc.reason)
                if exc.fatal_for_poll:
                    skip_reason = exc.reason
                continue
            for reg, offset, width, decoder in layout:
                try:
                    value: Value | None = decoder(words[offset : offset + width])
                    quality = GOOD
                except DecodeError as exc:
                    value, quality = None, f"decode error: {exc}"
                result.readings.append(self._reading(reg, value, timestamp, quality))
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
        stamped = [r._replace(timestamp_ns=device_ns) for r in readings]
        return checked(stamped, now_ns, self.max_skew_ns)[0]

    def _reading(self, reg: Register, value: Value | None, timestamp: int, quality: str) -> Reading:
        role = reg.role.value if reg.role else None
        return Reading(self.device.id, reg.name, value, timestamp, quality, reg.unit, role)

    def _record_bad(self, result: PollResult, request: ReadRequest, timestamp: int, reason: str) -> None:
        for reg in request.registers:
            result.readings.append(self._reading(reg, None, timestamp, reason))

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
