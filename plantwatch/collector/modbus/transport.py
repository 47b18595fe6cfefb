"""One connection per physical bus (TCP socket or serial port), shared by the devices behind it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from plantwatch.collector.errors import CollectorError
from plantwatch.config.plant import Endpoint
from plantwatch.core.deadline import Deadline

log = logging.getLogger(__name__)

FUNCTION_NAMES = {
    1: "read_coils",
    2: "read_discrete_inputs",
    3: "read_holding_registers",
    4: "read_input_registers",
}


class ReadError(CollectorError):
    """A read request failed; `reason` is the quality recorded on every value it carried.

    `fatal_for_poll` says whether the device is unreachable (timeout, connection), so the
    rest of this poll is skipped instead of waiting on more timeouts.
    """

    def __init__(self, reason: str, *, fatal_for_poll: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fatal_for_poll = fatal_for_poll


def exception_reason(code: int) -> str:
    """Quality text for a Modbus exception response, e.g. 'exception 2 ILLEGAL_ADDRESS'."""
    try:
        name = ExcCodes(code).name
    except ValueError:
        name = "UNKNOWN"
    return f"exception {code} {name}"


UNDECODABLE = "bad response: undecodable answer"


class UndecodableAnswer(ModbusException):
    """An answer pymodbus could not decode (a wrong byte count, an unknown function code)."""


def _answer_undecodable(client: Any) -> Any:
    """Make an undecodable answer fail the read that waits for it, at once and by name.

    pymodbus raises out of `data_received` on such an answer: asyncio then logs a "fatal error"
    with a traceback and drops the connection, and the read waits for its timeout and looks
    like a connection reset. Here the bytes are dropped and the waiting read gets the reason.
    """
    manager = client.ctx
    decode = manager.callback_data

    def callback_data(data: bytes, addr: tuple[str, int] | None = None) -> int:
        try:
            return int(decode(data, addr))
        except ModbusException as exc:
            future = manager.response_future
            if not future.done():
                future.set_exception(UndecodableAnswer(exc.string))
            return len(data)

    manager.callback_data = callback_data
    return client


class ModbusBus:
    """A pymodbus async client behind one lock, rebuilt after a timeout, reconnected with backoff.

    A timeout closes the connection: a late answer carrying an old transaction id must never
    be taken as the answer to a later request. Connection attempts back off exponentially
    from `backoff_min` to `backoff_max` seconds while the bus is down.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout: float = 1.0,
        backoff_min: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.lock = asyncio.Lock()
        self._client: Any = None
        self._backoff_min = backoff_min
        self._backoff_max = backoff_max
        self._backoff = 0.0
        self._next_attempt = 0.0
        self.connects = 0

    def _new_client(self) -> Any:
        ep = self.endpoint
        # pymodbus retries and reconnects are off: the bus owns both policies.
        common: dict[str, Any] = {"timeout": self.timeout, "retries": 0, "reconnect_delay": 0}
        if ep.kind == "serial":
            client = AsyncModbusSerialClient(
                ep.path,
                framer=FramerType.RTU,
                baudrate=ep.baudrate,
                parity=ep.parity,
                stopbits=ep.stopbits,
                bytesize=ep.bytesize,
                **common,
            )
            return _answer_undecodable(client)
        framer = FramerType.RTU if ep.kind == "rtu+tcp" else FramerType.SOCKET
        return _answer_undecodable(AsyncModbusTcpClient(ep.host, port=ep.port, framer=framer, **common))

    async def _ensure_connected(self) -> Any:
        if self._client is not None and self._client.connected:
            return self._client
        now = time.monotonic()
        if now < self._next_attempt:
            raise ReadError(
                f"not connected to {self.endpoint.bus_key} (next attempt in {self._next_attempt - now:.1f}s)",
                fatal_for_poll=True,
            )
        self.close()
        self._client = self._new_client()
        try:
            connected = await asyncio.wait_for(self._client.connect(), self.timeout + 1)
        except (TimeoutError, OSError, ModbusException):
            connected = False
        if not connected:
            self.close()
            self._backoff = min(self._backoff_max, max(self._backoff_min, self._backoff * 2))
            self._next_attempt = time.monotonic() + self._backoff
            raise ReadError(f"cannot connect to {self.endpoint.bus_key}", fatal_for_poll=True)
        self._backoff = 0.0
        self.connects += 1
        # Each read is bounded by its device's timeout in `read`; pymodbus' own wait for the same
        # answer would put a second timer on the loop for every request (its copy of the
        # parameters is read by the requests of this connection only).
        self._client.ctx.comm_params.timeout_connect = None
        return self._client

    async def read(
        self, unit: int, function: int, address: int, count: int, timeout: float
    ) -> list[int] | list[bool]:
        """Run one read request; return its registers or bits, or raise ReadError."""
        async with self.lock:
            client = await self._ensure_connected()
            method = getattr(client, FUNCTION_NAMES[function])
            try:
                async with Deadline(timeout):  # an answer that came while the loop was busy counts
                    response = await method(address, count=count, device_id=unit)
            except TimeoutError as exc:
                lost = not client.connected  # the device closed or reset the connection meanwhile
                self.close()
                reason = f"connection reset by {self.endpoint.bus_key}" if lost else "timeout"
                raise ReadError(reason, fatal_for_poll=True) from exc
            except UndecodableAnswer as exc:  # the stream may be out of step: start a fresh one
                self.close()
                raise ReadError(UNDECODABLE, fatal_for_poll=False) from exc
            except (ModbusException, OSError) as exc:
                self.close()
                raise ReadError(f"connection error: {exc}", fatal_for_poll=True) from exc
        if response.isError():
            raise ReadError(exception_reason(response.exception_code), fatal_for_poll=False)
        values = response.bits if function in (1, 2) else response.registers
        # Registers: exactly as many as asked. Bits come padded to whole bytes.
        expected = (count + 7) // 8 * 8 if function in (1, 2) else count
        if len(values) != expected:
            unit_name = "bit" if function in (1, 2) else "register"
            raise ReadError(
                f"bad response length: asked {count} {unit_name}(s), got {len(values)}", fatal_for_poll=False
            )
        return values[:count]

    def close(self) -> None:
        """Drop the connection; the next read opens a fresh one."""
        if self._client is not None:
            self._client.close()
            self._client = None
