"""One platform's TCP link: records sent in store order, each waiting for the platform's data
answer (CN 9014, same QN) when Flag A is set, resent `retries` times, then the link is reset and
the record sent again after reconnecting (backoff 1 s to 60 s): in order, none skipped. Requests
from the platform are answered: history (CN 2051/2061/2031 with BeginTime/EndTime: 9011, the data,
9012) and time (1011 get, 1012 set: plantwatch does not own the host's clock, see docs/hj212.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from plantwatch.config.hj212 import PlatformConfig
from plantwatch.contract.hj212 import (
    CN_DATA_ANSWER,
    CN_DAY,
    CN_EXECUTION_RESULT,
    CN_GET_TIME,
    CN_HOUR,
    CN_MINUTE,
    CN_REALTIME,
    CN_REQUEST_ANSWER,
    CN_SET_TIME,
    DATA_CNS,
    EXE_FAILED,
    EXE_NO_DATA,
    EXE_SUCCESS,
    FLAG_ANSWER,
    FLAG_VERSION_2017,
    QN_ACCEPTED,
    QN_REFUSED,
)
from plantwatch.core.outage_log import OutageLog
from plantwatch.hj212.errors import Hj212Error, PacketError
from plantwatch.hj212.packet import Packet, Reader, decode, encode
from plantwatch.hj212.stack import Cp
from plantwatch.hj212.store import RecordStore, Selection, Stored

log = logging.getLogger(__name__)
BACKOFF = (1.0, 60.0)
QN_WRONG_PW, QN_WRONG_MN = "3", "4"
CLOCK_TOLERANCE_S = 2.0


class LinkDown(Hj212Error):
    """The platform stopped answering or the connection broke: reconnect and resend."""


class PlatformLink:
    """Keeps one platform up to date (see the module's docstring)."""

    def __init__(
        self,
        config: PlatformConfig,
        store: RecordStore,
        password: str,
        zone: ZoneInfo,
        realtime: Callable[[], list[tuple[str, Cp]]],
        *,
        clock: Callable[[], int] = time.time_ns,
        backoff: tuple[float, float] = BACKOFF,
    ) -> None:
        self.config, self.store, self.password, self.zone = config, store, password, zone
        self.realtime, self.clock, self.backoff = realtime, clock, backoff
        kinds: list[tuple[str, int]] = []
        if config.data.minute is not None:
            kinds.append((CN_MINUTE, int(config.data.minute)))
        if config.data.hour:
            kinds.append((CN_HOUR, 3600))
        if config.data.day:
            kinds.append((CN_DAY, 86400))
        self.selection = Selection(tuple(config.devices), tuple(kinds))
        self.connected = False
        self.sent = self.resent = self.bad_packets = 0
        self.new_records = asyncio.Event()
        self._answers: dict[str, asyncio.Future[Packet]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._listening: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[None]] = set()  # history answers in progress
        self._last_qn_ms = 0
        self._outage = OutageLog(log)

    @property
    def name(self) -> str:
        return self.config.name

    def backlog(self) -> int:
        return self.store.backlog(self.name, self.selection)

    # --- the connection ---

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, send, answer, reconnect, until `stop`."""
        pause = self.backoff[0]
        while not stop.is_set():
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.config.host, self.config.port), self.config.timeout
                )
            except (OSError, TimeoutError) as exc:
                self._outage.failure(
                    "hj212 %s: cannot connect to %s:%d: %s; retrying (records wait in the store)",
                    self.name, self.config.host, self.config.port, exc or type(exc).__name__,
                )  # fmt: skip
                await _wait(stop, pause)
                pause = min(pause * 2, self.backoff[1])
                continue
            self._outage.recovered(
                "hj212 %s: connected to %s:%d", self.name, self.config.host, self.config.port
            )
            pause = self.backoff[0]
            self._writer, self.connected = writer, True
            listening = self._listening = asyncio.create_task(self._listen(reader))
            try:
                await self._send_loop(stop, listening)
            except (LinkDown, OSError) as exc:
                self._outage.failure(
                    "hj212 %s: %s; reconnecting, unacknowledged records resent", self.name, exc
                )
            finally:
                self.connected, self._writer = False, None
                for request in list(self._requests):
                    request.cancel()
                listening.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):  # its end is the link's
                    await listening
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            if not stop.is_set():
                await _wait(stop, pause)

    async def _send_loop(self, stop: asyncio.Event, listening: asyncio.Task[None]) -> None:
        realtime_every = self.config.data.realtime
        next_realtime = 0.0
        while not stop.is_set():
            if listening.done():
                raise LinkDown("the platform closed the connection")
            record = self.store.next_after(self.name, self.selection)
            if record is not None:
                await self._deliver(record)
                continue
            if realtime_every is not None and time.monotonic() >= next_realtime:
                next_realtime = time.monotonic() + realtime_every
                for device, cp in self.realtime():
                    if device in self.config.devices:
                        await self._send(self._packet(CN_REALTIME, cp, answer=False))
            self.new_records.clear()
            wait = 1.0 if realtime_every is None else max(0.05, min(1.0, next_realtime - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.new_records.wait(), wait)

    async def _deliver(self, record: Stored) -> None:
        """Send one record until the platform answers; LinkDown after `retries` resends."""
        packet = self._packet(record.cn, record.cp, answer=self.config.answer)
        for attempt in range(self.config.retries + 1):
            if attempt:
                self.resent += 1
            if await self._send(packet):
                self.store.acknowledge(self.name, record, self.clock())
                return
        raise LinkDown(f"no answer to QN {packet.qn} ({record.cn}) after {self.config.retries + 1} sends")

    async def _send(self, packet: Packet) -> bool:
        """Write the packet (all its parts); with Flag A, True once each part is answered."""
        writer = self._writer
        if writer is None:
            raise LinkDown("not connected")
        for part in encode(packet):
            waiter: asyncio.Future[Packet] | None = None
            if packet.wants_answer:
                waiter = asyncio.get_running_loop().create_future()
                self._answers[packet.qn] = waiter
            writer.write(part)
            await writer.drain()
            self.sent += 1
            if waiter is None:
                continue
            try:
                # the answer, or the platform closing the connection (no need to wait for timeouts)
                watched: set[asyncio.Future[Any]] = {waiter}
                if self._listening is not None:
                    watched.add(self._listening)
                await asyncio.wait(watched, timeout=self.config.timeout, return_when=asyncio.FIRST_COMPLETED)
                if not waiter.done():
                    if self._listening is not None and self._listening.done():
                        raise LinkDown("the platform closed the connection")
                    return False
            finally:
                self._answers.pop(packet.qn, None)
                if not waiter.done():
                    waiter.cancel()
        return True

    # --- what the platform sends ---

    async def _listen(self, reader: asyncio.StreamReader) -> None:
        frames = Reader()
        while True:
            data = await reader.read(65536)
            if not data:
                return
            for raw in frames.feed(data):
                try:
                    packet = decode(raw)
                except PacketError as exc:
                    self.bad_packets += 1
                    log.warning(
                        "hj212 %s: ignored a packet from the platform: %s: %r", self.name, exc, raw[:120]
                    )
                    continue
                try:
                    await self._handle(packet)
                except PacketError as exc:  # a request with a bad time: refused, the link stays
                    self.bad_packets += 1
                    log.warning(
                        "hj212 %s: request QN %s CN %s refused: %s", self.name, packet.qn, packet.cn, exc
                    )
                    await self._send(self._answer(packet, CN_REQUEST_ANSWER, [[("QnRtn", QN_REFUSED)]]))

    async def _handle(self, packet: Packet) -> None:
        if packet.cn == CN_DATA_ANSWER:
            waiter = self._answers.get(packet.qn)
            if waiter is not None and not waiter.done():
                waiter.set_result(packet)
            return
        if packet.mn and packet.mn != self.config.mn:
            await self._send(self._answer(packet, CN_REQUEST_ANSWER, [[("QnRtn", QN_WRONG_MN)]]))
            return
        if packet.pw and packet.pw != self.password:
            await self._send(self._answer(packet, CN_REQUEST_ANSWER, [[("QnRtn", QN_WRONG_PW)]]))
            return
        if packet.cn in DATA_CNS and packet.value("BeginTime") and packet.value("EndTime"):
            begin, end = (self._parse_time(packet.value(k) or "") for k in ("BeginTime", "EndTime"))
            # answered beside the listener, which must go on reading the platform's 9014 answers
            task = asyncio.create_task(self._history(packet, begin, end))
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)
        elif packet.cn == CN_GET_TIME:
            await self._send(self._answer(packet, CN_REQUEST_ANSWER, [[("QnRtn", QN_ACCEPTED)]]))
            now = datetime.fromtimestamp(self.clock() / 1e9, self.zone).strftime("%Y%m%d%H%M%S")
            await self._send(self._answer(packet, CN_GET_TIME, [[("SystemTime", now)]], st=self.config.st))
            await self._send(self._answer(packet, CN_EXECUTION_RESULT, [[("ExeRtn", EXE_SUCCESS)]]))
        elif packet.cn == CN_SET_TIME:
            await self._set_time(packet)
        else:
            log.info("hj212 %s: request CN %s not supported; refused", self.name, packet.cn)
            await self._send(self._answer(packet, CN_REQUEST_ANSWER, [[("QnRtn", QN_REFUSED)]]))

    async def _history(self, request: Packet, begin: int, end: int) -> None:
        """Answer a history request: 9011 accepted, each record in range (the request's QN), 9012."""
        await self._send(self._answer(request, CN_REQUEST_ANSWER, [[("QnRtn", QN_ACCEPTED)]]))
        seconds = {CN_MINUTE: int(self.config.data.minute or 600), CN_HOUR: 3600}.get(request.cn, 86400)
        records = self.store.history(self.config.devices, request.cn, seconds, begin, end)
        for record in records:
            await self._send(
                Packet(
                    request.qn,
                    self.config.st,
                    record.cn,
                    self.password,
                    self.config.mn,
                    FLAG_VERSION_2017,
                    record.cp,
                )
            )
        result = EXE_SUCCESS if records else EXE_NO_DATA
        await self._send(self._answer(request, CN_EXECUTION_RESULT, [[("ExeRtn", result)]]))
        log.info("hj212 %s: history %s %s-%s: %d record(s)", self.name, request.cn,
                 request.value("BeginTime"), request.value("EndTime"), len(records))  # fmt: skip

    async def _set_time(self, request: Packet) -> None:
        """plantwatch does not set the host's clock (NTP does): success when it already agrees."""
        wanted = self._parse_time(request.value("SystemTime") or "")
        await self._send(self._answer(request, CN_REQUEST_ANSWER, [[("QnRtn", QN_ACCEPTED)]]))
        offset = (self.clock() - wanted) / 1e9
        if abs(offset) <= CLOCK_TOLERANCE_S:
            result = EXE_SUCCESS
        else:
            result = EXE_FAILED
            log.warning(
                "hj212 %s: the platform's time differs from this host's by %.0f s: fix the host's NTP",
                self.name,
                offset,
            )
        await self._send(self._answer(request, CN_EXECUTION_RESULT, [[("ExeRtn", result)]]))

    # --- packets ---

    def _packet(self, cn: str, cp: Cp, *, answer: bool) -> Packet:
        flag = FLAG_VERSION_2017 | (FLAG_ANSWER if answer else 0)
        return Packet(self._qn(), self.config.st, cn, self.password, self.config.mn, flag, cp)

    def _answer(self, request: Packet, cn: str, cp: Cp, st: str = "91") -> Packet:
        return Packet(request.qn, st, cn, self.password, self.config.mn, FLAG_VERSION_2017, cp)

    def _qn(self) -> str:
        """YYYYMMDDhhmmssfff in the plant's zone, never twice (a clash moves on by a millisecond)."""
        ms = max(self.clock() // 10**6, self._last_qn_ms + 1)
        self._last_qn_ms = ms
        return datetime.fromtimestamp(ms / 1000, self.zone).strftime("%Y%m%d%H%M%S%f")[:17]

    def _parse_time(self, text: str) -> int:
        try:
            moment = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=self.zone)
        except ValueError as exc:
            raise PacketError(f"{text!r} is not YYYYMMDDhhmmss") from exc
        return int(moment.timestamp()) * 10**9


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
