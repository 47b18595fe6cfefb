"""Writers and forwarder against a real InfluxDB (v1 /write, and v2 through the 1.8-style proxy)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from plantwatch.config.plant import InfluxConfig
from plantwatch.infra.influx.buffer import DurableBuffer
from plantwatch.infra.influx.forwarder import Forwarder
from plantwatch.infra.influx.writers import Encoded, WriteError, Writer, make_writer
from tests.services.influx_proxy import InfluxProxy
from tests.services.influxdb import InfluxDBServer
from tests.waiting import wait_until, wait_until_async


def lines(n: int, start: int = 0) -> list[str]:
    return [f"m,device=d{i % 3} v={float(i)},n={i}i {1_000_000 + i}" for i in range(start, start + n)]


def count(influxdb: InfluxDBServer, db: str, measurement: str = "m") -> int:
    series = influxdb.query(f'SELECT count("n") FROM "{measurement}"', db)
    return series[0]["values"][0][1] if series else 0


def v1_config(url: str, db: str, **extra: object) -> InfluxConfig:
    return InfluxConfig(url=url, api="v1", database=db, timeout="5s", **extra)  # type: ignore[arg-type]


def test_v1_writer_writes_and_reads_back(influxdb: InfluxDBServer, influx_db: str) -> None:
    writer = make_writer(v1_config(influxdb.url, influx_db))
    writer.send(writer.encode(lines(500)))
    writer.close()
    assert count(influxdb, influx_db) == 500
    (series,) = influxdb.query("SELECT v, n FROM m WHERE device = 'd1' ORDER BY time LIMIT 2", influx_db)
    assert series["values"] == [[1_000_001, 1.0, 1], [1_000_004, 4.0, 4]]


def test_v2_writer_through_the_18_style_api(
    influxdb: InfluxDBServer, influx_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW_TEST_TOKEN", "reader:secret")
    with InfluxProxy(influxdb.url) as proxy:
        config = InfluxConfig(
            url=proxy.url, api="v2", bucket=f"{influx_db}/autogen", token_env="PW_TEST_TOKEN"
        )
        writer = make_writer(config)
        writer.send(writer.encode(lines(300)))
        writer.close()
    assert count(influxdb, influx_db) == 300
    assert [path for path, _ in proxy.requests] == ["/api/v2/write"]


def test_errors_are_classified_with_the_servers_reason(influxdb: InfluxDBServer, influx_db: str) -> None:
    missing = make_writer(v1_config(influxdb.url, "no_such_db"))
    with pytest.raises(WriteError) as info:
        missing.send(missing.encode(lines(1)))
    assert (info.value.kind, info.value.status) == ("config", 404)
    assert "database not found" in str(info.value)

    writer = make_writer(v1_config(influxdb.url, influx_db))
    with pytest.raises(WriteError) as info:
        writer.send(writer.encode(["m v=1 1", "this is not line protocol"]))
    assert (info.value.kind, info.value.status) == ("reject", 400)
    assert "unable to parse" in str(info.value)

    down = make_writer(v1_config("http://127.0.0.1:9", influx_db))
    with pytest.raises(WriteError) as info:
        down.send(down.encode(lines(1)))
    assert info.value.kind == "retry" and "cannot reach InfluxDB at http://127.0.0.1:9" in str(info.value)


def test_missing_secret_names_the_variable_not_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PW_ABSENT", raising=False)
    with pytest.raises(Exception, match="environment variable PW_ABSENT"):
        make_writer(InfluxConfig(url="http://x", api="v2", bucket="b", token_env="PW_ABSENT"))


def run_forwarder(buffer: DurableBuffer, forwarder: Forwarder, until_empty: float = 30) -> None:
    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(forwarder.run(stop))
        try:
            await wait_until_async(lambda: buffer.depth == 0, until_empty, "the buffer drained")
        finally:
            stop.set()
            await task

    asyncio.run(run())


def test_one_bad_line_is_dead_lettered_and_the_rest_written(
    influxdb: InfluxDBServer, influx_db: str, tmp_path: Path
) -> None:
    buffer = DurableBuffer(tmp_path / "b.sqlite")
    good = lines(100)
    bad = 'm,device=d0 v="text where a float belongs",n=1i 2000000'  # field type conflict
    buffer.append([*good[:37], bad, *good[37:]])
    dead = tmp_path / "dead.jsonl"
    forwarder = Forwarder(
        buffer, make_writer(v1_config(influxdb.url, influx_db)), batch_size=1000, dead_letter=dead
    )
    run_forwarder(buffer, forwarder)
    assert count(influxdb, influx_db) == 100
    assert forwarder.stats.dead_letters == 1
    (record,) = [json.loads(line) for line in dead.read_text(encoding="utf-8").splitlines()]
    assert record["line"] == bad and record["status"] == 400
    assert "field type conflict" in record["reason"]
    assert buffer.depth == 0


def test_retry_after_is_honoured(influxdb: InfluxDBServer, influx_db: str, tmp_path: Path) -> None:
    buffer = DurableBuffer(tmp_path / "b.sqlite")
    buffer.append(lines(10))
    with InfluxProxy(influxdb.url) as proxy:
        proxy.inject = [(429, {"Retry-After": "2"}, '{"error":"slow down"}'), (503, {}, "{}")]
        forwarder = Forwarder(
            buffer,
            make_writer(v1_config(proxy.url, influx_db)),
            batch_size=100,
            flush_interval=0.01,
            dead_letter=tmp_path / "d",
            backoff_min=0.1,
        )
        started = time.monotonic()
        run_forwarder(buffer, forwarder)
        elapsed = time.monotonic() - started
    assert count(influxdb, influx_db) == 10
    assert forwarder.stats.write_errors == 2
    assert 2.0 <= elapsed < 5  # waited Retry-After (2 s), then the 0.1 s backoff after the 503
    assert len(proxy.requests) == 3


def test_outage_keeps_everything_and_drains_in_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    influx = InfluxDBServer(tmp_path / "influx")
    influx.start()
    influx.create_database("plant")
    buffer = DurableBuffer(tmp_path / "b.sqlite")
    try:
        with InfluxProxy(influx.url) as proxy:
            writer = make_writer(v1_config(proxy.url, "plant"))
            forwarder = Forwarder(
                buffer,
                writer,
                batch_size=250,
                flush_interval=0.05,
                dead_letter=tmp_path / "d",
                backoff_min=0.2,
                backoff_max=0.5,
            )

            async def run() -> None:
                stop = asyncio.Event()
                task = asyncio.create_task(forwarder.run(stop))
                for chunk in range(20):  # 2,000 lines arrive while InfluxDB is down for a while
                    buffer.append(lines(100, start=chunk * 100))
                    if chunk == 3:
                        influx.stop()
                    if chunk == 15:
                        influx.start()
                    await asyncio.sleep(0.1)  # arrivals spread over 2 s: the outage is in the middle
                await wait_until_async(lambda: buffer.depth == 0, 60, "the buffer drained")
                stop.set()
                await task

            with caplog.at_level(logging.DEBUG, logger="plantwatch"):
                asyncio.run(run())
        assert count(influx, "plant") == 2000
        outage = [r for r in caplog.records if "kept in the buffer" in r.getMessage()]
        assert outage[0].levelname == "ERROR" and {r.levelname for r in outage[1:]} <= {"DEBUG"}
        assert sum("writing again" in r.getMessage() for r in caplog.records) == 1
        assert forwarder.stats.write_errors > 0
        firsts = [int(batch[0].rsplit(" ", 1)[1]) for path, batch in proxy.requests]
        assert firsts == sorted(firsts)  # every batch, retries included, in buffer order
    finally:
        influx.stop()


@pytest.mark.parametrize(
    ("status", "requests", "errors"),
    [(503, 6, 1), (400, 7, 0)],  # 503: the batch again after its backoff; 400: the batch in halves
)
def test_a_failed_post_holds_back_the_post_queued_behind_it(
    influxdb: InfluxDBServer, influx_db: str, tmp_path: Path, status: int, requests: int, errors: int
) -> None:
    """With a backlog, the next batch's post is queued while one is in flight. When that one
    fails, the queued post does not go out after it: the retry (after its backoff) or the halves
    of a rejected batch come first, and every batch reaches InfluxDB in buffer order, with one
    failure counted."""
    buffer = DurableBuffer(tmp_path / "b.sqlite")
    for chunk in range(5):
        buffer.append(lines(100, start=chunk * 100))
    with InfluxProxy(influxdb.url) as proxy:
        proxy.inject.append((status, {}, '{"error": "injected"}'))
        writer = make_writer(v1_config(proxy.url, influx_db))
        forwarder = Forwarder(
            buffer, writer, batch_size=100, flush_interval=3600, dead_letter=tmp_path / "d", backoff_min=0.2
        )
        run_forwarder(buffer, forwarder)
        forwarder.close()
    assert count(influxdb, influx_db) == 500
    firsts = [int(batch[0].rsplit(" ", 1)[1]) for _, batch in proxy.requests]
    assert firsts == sorted(firsts), firsts  # every batch, retries and halves included, in buffer order
    assert (len(proxy.requests), forwarder.stats.write_errors) == (requests, errors)


def test_a_backlog_reports_its_drain(
    influxdb: InfluxDBServer, influx_db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    buffer = DurableBuffer(tmp_path / "b.sqlite")
    for chunk in range(30):
        buffer.append(lines(1000, start=chunk * 1000))
    forwarder = Forwarder(buffer, make_writer(v1_config(influxdb.url, influx_db)), dead_letter=tmp_path / "d")
    with caplog.at_level(logging.INFO, logger="plantwatch"):
        assert asyncio.run(forwarder.flush(60))
    messages = [r.getMessage() for r in caplog.records]
    assert "draining a backlog of 25000 line(s) to InfluxDB" in messages
    assert not any(m.startswith("backlog: ") for m in messages)  # no rate before 10 s of history
    assert "backlog drained; 0 line(s) buffered" in messages
    assert count(influxdb, influx_db) == 30_000


def test_an_unexpected_error_does_not_end_forwarding(
    influxdb: InfluxDBServer, influx_db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    buffer = DurableBuffer(tmp_path / "b.sqlite")
    buffer.append(lines(10))
    writer = make_writer(v1_config(influxdb.url, influx_db))
    forwarder = Forwarder(buffer, writer, flush_interval=0.01, dead_letter=tmp_path / "d", backoff_max=0.2)
    real_read, calls = buffer.read, []

    def flaky_read(limit: int) -> object:
        calls.append(limit)
        if len(calls) == 1:
            raise OSError("disk I/O error")
        return real_read(limit)

    buffer.read = flaky_read  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="plantwatch"):
        run_forwarder(buffer, forwarder)
    assert count(influxdb, influx_db) == 10
    assert any("forwarder: unexpected error; retrying" in r.getMessage() for r in caplog.records)


def test_a_long_drain_logs_its_rate_and_eta(
    influxdb: InfluxDBServer, influx_db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    buffer = DurableBuffer(tmp_path / "b.sqlite")
    for chunk in range(60):
        buffer.append(lines(500, start=chunk * 500))
    with InfluxProxy(influxdb.url) as proxy:
        proxy.delay = 0.05  # a slow InfluxDB: the drain takes a few seconds
        forwarder = Forwarder(
            buffer,
            make_writer(v1_config(proxy.url, influx_db)),
            batch_size=500,
            dead_letter=tmp_path / "d",
            progress_every=0.5,
        )
        with caplog.at_level(logging.INFO, logger="plantwatch"):
            assert asyncio.run(forwarder.flush(60))
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("backlog: ")]
    assert progress, "no progress line"
    assert all(" lines/s, ETA 0:00:" in m for m in progress)
    left = [int(m.split()[1]) for m in progress]
    assert left == sorted(left, reverse=True) and left[0] < 30_000


def test_a_backlog_is_drained_to_its_end_and_a_trickle_still_waits(
    influxdb: InfluxDBServer, influx_db: str, tmp_path: Path
) -> None:
    """After full batches the young remainder goes at once (no `flush_interval` wait at the end of
    a burst); a partial batch after a partial batch waits for it."""
    buffer = DurableBuffer(tmp_path / "b.sqlite")
    for chunk in range(25):  # commits of 10 lines: batches of 100, 100 and a young 50
        buffer.append(lines(10, start=chunk * 10))
    writer = make_writer(v1_config(influxdb.url, influx_db))
    forwarder = Forwarder(buffer, writer, batch_size=100, flush_interval=3600, dead_letter=tmp_path / "d")
    run_forwarder(buffer, forwarder, until_empty=20)  # an hour's flush_interval: never waited for
    assert count(influxdb, influx_db) == 250

    async def trickle() -> bool:
        buffer.append(lines(10, start=250))
        return await forwarder.send_batch(asyncio.Event())

    assert asyncio.run(trickle()) is False and buffer.depth == 10  # it waits for flush_interval


def test_a_stream_of_commits_too_big_to_pair_is_sent_without_waiting(
    influxdb: InfluxDBServer, influx_db: str, tmp_path: Path
) -> None:
    """Commits of 60 lines with batches of 100: a batch holds one commit (commits are never
    split), and with more waiting behind it, it is full: nothing waits for `flush_interval`."""
    buffer = DurableBuffer(tmp_path / "b.sqlite")
    for chunk in range(5):
        buffer.append(lines(60, start=chunk * 60))
    writer = make_writer(v1_config(influxdb.url, influx_db))
    forwarder = Forwarder(buffer, writer, batch_size=100, flush_interval=3600, dead_letter=tmp_path / "d")
    run_forwarder(buffer, forwarder, until_empty=20)
    assert count(influxdb, influx_db) == 300


class QueueWatch:
    """The real v1 writer, counting encodes; each send first waits (on the post thread, up to 5 s)
    until the post of the batch behind it is queued, when one is expected. A forwarder that
    queued that post only after this one ended would keep every such send waiting 5 s."""

    def __init__(self, writer: Writer, batches: int) -> None:
        self.writer, self.target, self.batches = writer, writer.target, batches
        self.queued = [threading.Event() for _ in range(batches + 1)]
        self.encodes = self.posts = self.waited_out = 0
        self.threads: set[threading.Thread] = set()  # the threads posts ran on

    def watch(self, forwarder: Forwarder) -> None:
        """Note each post the forwarder queues on its post thread."""
        submit = forwarder._poster.submit
        submitted = iter(self.queued)

        def noted(*args: Any) -> Any:
            next(submitted, threading.Event()).set()  # past the batches expected: nothing to note
            return submit(*args)

        forwarder._poster.submit = noted  # type: ignore[method-assign]

    def encode(self, lines: list[str]) -> Encoded:
        self.encodes += 1
        return self.writer.encode(lines)

    def send(self, encoded: Encoded) -> None:
        self.threads.add(threading.current_thread())
        following = self.queued[self.posts + 1] if self.posts + 1 < self.batches else None
        self.posts += 1
        if following is not None and not following.wait(5):
            self.waited_out += 1
        self.writer.send(encoded)

    def close(self) -> None:
        self.writer.close()


def test_a_backlog_s_next_post_is_queued_behind_the_post_in_flight(
    influxdb: InfluxDBServer, influx_db: str, tmp_path: Path
) -> None:
    """While a batch is posted the next one is read and gzipped and its post queued on the post
    thread, so it starts the moment the one before it ends; each batch is still encoded once and
    posted once, one post at a time, and all arrive."""
    buffer = DurableBuffer(tmp_path / "b.sqlite")
    for chunk in range(4):
        buffer.append(lines(100, start=chunk * 100))
    watch = QueueWatch(make_writer(v1_config(influxdb.url, influx_db)), batches=4)
    forwarder = Forwarder(buffer, watch, batch_size=100, flush_interval=3600, dead_letter=tmp_path / "d")
    watch.watch(forwarder)
    run_forwarder(buffer, forwarder)
    [poster] = watch.threads  # every post on one thread
    forwarder.close()  # the post thread ends, the writer closes
    wait_until(lambda: not poster.is_alive(), 5, "the post thread ended")
    assert count(influxdb, influx_db) == 400
    assert (watch.posts, watch.encodes, watch.waited_out) == (4, 4, 0)
