"""The sink: group commits, acks after the commit, a failing disk, the readings bus it feeds."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from plantwatch.collector.readings_bus import ReadingsBus
from plantwatch.collector.sink import BufferSink
from plantwatch.config.plant import Plant, parse_plant_config
from plantwatch.contract.bus import MAX_MESSAGE_BYTES, results_from_bus
from plantwatch.core.reading import PollResult, Reading
from plantwatch.infra.influx.buffer import DurableBuffer
from tests.waiting import wait_until_async


def plant() -> Plant:
    devices = [{"id": "stack-1", "map": "dust_cems", "url": "tcp://127.0.0.1:1502"}]
    return parse_plant_config(
        {"plant": {"id": "p", "name": "P"}, "devices": devices}, "plant.yaml", Path(".")
    )


def result(seq: int) -> PollResult:
    return PollResult(
        "stack-1", [Reading("stack-1", "dust", 1.0 + seq, 1000 + seq)], 1, 1000 + seq, 2000 + seq
    )


def test_acknowledged_and_announced_only_after_the_commit(tmp_path: Path) -> None:
    buffer = DurableBuffer(tmp_path / "b.sqlite")
    sink = BufferSink(plant(), buffer, asyncio.Event(), 5000, commit_interval=0.05)
    acked: list[int] = []
    announced: list[int] = []
    sink.listeners.append(lambda results: announced.extend(r.started_ns for r in results))

    async def run() -> tuple[int, int]:
        for seq in range(3):
            sink(result(seq), lambda seq=seq: acked.append(seq))
        before = (len(acked), buffer.depth)
        await wait_until_async(lambda: len(acked) == 3, 5, "the commit timer acknowledging")
        return before

    assert asyncio.run(run()) == (0, 0)  # nothing acknowledged before it is on disk
    assert acked == [0, 1, 2] and announced == [1000, 1001, 1002]
    assert buffer.depth == 6  # a data line and a poll line per result
    assert sink.stats.polls == 3 and sink.stats.readings == 3


def test_a_failing_disk_is_counted_and_nothing_acknowledged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    buffer = DurableBuffer(tmp_path / "b.sqlite")
    sink = BufferSink(plant(), buffer, asyncio.Event(), 5000)
    acked: list[int] = []

    def broken_append(lines: list[str]) -> int:
        raise sqlite3.OperationalError("database or disk is full")

    buffer.append = broken_append  # type: ignore[method-assign]

    async def run() -> None:
        sink(result(0), lambda: acked.append(0))
        sink.flush()

    with caplog.at_level(logging.ERROR, logger="plantwatch"):
        asyncio.run(run())
    assert acked == [] and buffer.refused == 2
    assert any("cannot store 2 line(s): database or disk is full" in r.getMessage() for r in caplog.records)


def test_a_failing_listener_does_not_stop_the_others(tmp_path: Path) -> None:
    buffer = DurableBuffer(tmp_path / "b.sqlite")
    wakeup = asyncio.Event()
    sink = BufferSink(plant(), buffer, wakeup, batch_size=1)
    seen: list[int] = []

    def broken(results: list[PollResult]) -> None:
        raise ValueError("bus down")

    sink.listeners += [broken, lambda results: seen.extend(r.started_ns for r in results)]

    async def run() -> None:
        sink(result(0))
        sink.flush()

    asyncio.run(run())
    assert seen == [1000] and wakeup.is_set() and buffer.depth == 2


def test_the_readings_bus_sends_a_commit_as_one_message_per_device_in_order() -> None:
    sent: list[tuple[str, bytes]] = []

    class Recorder:  # the Publisher interface: what MqttConnection.publish is given
        def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
            assert qos == 1 and isinstance(payload, bytes)
            sent.append((topic, payload))

    busy = MAX_MESSAGE_BYTES // 40  # more results of stack-1 than one message holds
    huge = PollResult("stack-3", [Reading("stack-3", "dust", None, 7, "x" * MAX_MESSAGE_BYTES)], 1, 7, 8)
    other = PollResult("stack-2", [Reading("stack-2", "dust", 9.0, 5)], 1, 5, 6)
    committed = [result(0), other, huge, *(result(seq) for seq in range(1, busy))]
    ReadingsBus(Recorder(), "p")(committed)

    topics = [topic for topic, _ in sent]
    assert topics == ["plantwatch/v2/p/stack-1"] * 2 + ["plantwatch/v2/p/stack-2", "plantwatch/v2/p/stack-3"]
    assert all(len(payload) <= MAX_MESSAGE_BYTES for _, payload in sent[:3])  # split by size
    stack_1 = [r for _, payload in sent[:2] for r in results_from_bus(payload)]
    assert [(r.started_ns, r.readings[0].value) for r in stack_1] == [
        (1000 + seq, 1.0 + seq) for seq in range(busy)
    ]
    assert [(r.device, r.started_ns) for r in results_from_bus(sent[2][1])] == [("stack-2", 5)]
    assert len(results_from_bus(sent[3][1])) == 1  # a result larger than the limit goes alone
