"""Ingest benchmarks against a real InfluxDB (Debian's influxd), each with a same-run baseline.

    python -m benchmarks.influx_ingest                    # throughput + 10-minute outage, ~12 min
    python -m benchmarks.influx_ingest --rounds 5 --outage-seconds 60   # docs/performance.md
    python -m benchmarks.influx_ingest --rounds 5 --outage-seconds 0 --pin   # influxd on its own core

1. throughput: readings/s through plantwatch's whole pipeline (decode registers -> line
   protocol -> durable buffer -> forwarder -> InfluxDB /write) vs posting the same lines,
   serialized beforehand, straight to the same InfluxDB in batches of the same size
   (ratio of the best of N rounds each, and of the medians; target >= 0.8; absolute rate
   reported). The CPU of this process and of influxd is read for every run: both share the
   machine's cores, so the report also gives the ceiling of the ratio on them. With --pin,
   influxd gets one core and this process another, in both arms: InfluxDB on a core of its
   own, as on a host of its own (docs/deployment.md), so the ratio is plantwatch's cost alone.
2. outage: polls keep arriving at 1,000 per second while InfluxDB is unreachable; the RSS of
   the process is sampled every 10 s while the buffer grows on disk (target: flat).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import urllib3

from benchmarks.report import save
from plantwatch.app.collect import service_runtime
from plantwatch.collector.modbus.plan import plan_requests
from plantwatch.collector.modbus.poller import ResponseDecoder
from plantwatch.collector.sink import BufferSink
from plantwatch.config.device_map import load_device_map, shipped_maps_dir
from plantwatch.config.plant import InfluxConfig, Plant, parse_plant_config
from plantwatch.contract.influx import DeviceSeries, device_tags, poll_lines
from plantwatch.core.codecs import encode
from plantwatch.core.reading import PollResult
from plantwatch.infra.influx.buffer import DurableBuffer
from plantwatch.infra.influx.forwarder import Forwarder
from plantwatch.infra.influx.writers import Encoded, Writer, make_writer
from tests.services.influxdb import InfluxDBServer

BATCH = 5000
MODEL = "dust_cems"  # 13 values per poll, one request (the clock registers merged in)


@dataclass
class Run:
    """One timed run: wall seconds, and CPU seconds of this process and of influxd meanwhile."""

    seconds: float = 0.0
    own_cpu: float = 0.0
    influxd_cpu: float = 0.0
    posts: dict[str, float] = field(default_factory=dict)  # the pipeline's posts: see Posts.summary


@dataclass
class TimedWriter:
    """The pipeline's writer, recording when each post started and ended: the forwarder keeps one
    post in flight, so its throughput is the time a post takes plus the gap to the next one. A
    post here is the HTTP request; the batch was encoded (joined, gzipped) before it."""

    writer: Writer
    times: list[tuple[float, float]] = field(default_factory=list)  # (start, end), perf_counter

    def __post_init__(self) -> None:
        self.target = self.writer.target

    def encode(self, lines: list[str]) -> Encoded:
        return self.writer.encode(lines)

    def send(self, encoded: Encoded) -> None:
        start = time.perf_counter()
        self.writer.send(encoded)
        self.times.append((start, time.perf_counter()))

    def close(self) -> None:
        self.writer.close()

    def summary(self, produced_at: float) -> dict[str, float]:
        """Posts, and the mean post and gap before it (ms) while polls were still being produced
        and after: a post takes longer while the pipeline's own thread holds one of the cores."""
        out: dict[str, float] = {"posts": len(self.times)}
        gaps = [start - previous_end for (_, previous_end), (start, _) in pairwise(self.times)]
        for phase, producing in (("producing", True), ("after", False)):
            posts = [n for n, (start, _) in enumerate(self.times) if (start < produced_at) == producing]
            took = [self.times[n][1] - self.times[n][0] for n in posts]
            waited = [gaps[n - 1] for n in posts if n > 0]  # the first post has no gap before it
            out[f"posts_{phase}"] = len(posts)
            out[f"post_ms_{phase}"] = round(1000 * statistics.mean(took), 1) if took else 0.0
            out[f"gap_ms_{phase}"] = round(1000 * statistics.mean(waited), 1) if waited else 0.0
        return out


@contextmanager
def stopwatch(server: InfluxDBServer) -> Iterator[Run]:
    """Time the block; InfluxDB's CPU comes from /proc, as both share this machine's cores."""
    assert server.proc is not None
    run, pid = Run(), server.proc.pid
    wall, own, influxd = time.perf_counter(), time.process_time(), process_cpu(pid)
    yield run
    run.seconds = time.perf_counter() - wall
    run.own_cpu = time.process_time() - own
    run.influxd_cpu = process_cpu(pid) - influxd


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin_apart(server: InfluxDBServer) -> None:
    """influxd's threads on the first core this process may use, this process on the second
    (threads started later inherit it)."""
    assert server.proc is not None
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("--pin needs two cores")
    first, second = sorted(os.sched_getaffinity(0))[:2]
    for thread in os.listdir(f"/proc/{server.proc.pid}/task"):
        os.sched_setaffinity(int(thread), {first})
    os.sched_setaffinity(0, {second})


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class PollFactory:
    """Poll results as the poller makes them: each request's response words decoded by the
    poller's own ResponseDecoder."""

    def __init__(self, devices: int) -> None:
        self.device_map = load_device_map(shipped_maps_dir() / f"{MODEL}.yaml")
        samples = {"float32": 12.5, "string": "N"}
        responses = []
        for request in plan_requests(self.device_map.registers):
            words = [0] * request.count  # as the meter answers: the request's whole span
            for reg in request.registers:
                value = encode(samples.get(reg.type, 1234), reg.type, reg.byte_order, length=reg.length)
                words[reg.address - request.address : reg.address - request.address + reg.width] = value
            responses.append((request, words))
        self.devices = [
            [(ResponseDecoder(f"stack-{i}", request), words) for request, words in responses]
            for i in range(devices)
        ]
        self.series = [
            DeviceSeries.build("cems", device_tags("bench", f"stack-{i}", "emissions", MODEL, None, {}))
            for i in range(devices)
        ]

    def poll(self, device: int, ts: int) -> PollResult:
        responses = self.devices[device]
        result = PollResult(f"stack-{device}", requests=len(responses), started_ns=ts, finished_ns=ts + 10**6)
        for decoder, words in responses:
            decoder.decode(words, ts, result)
        return result

    def readings_per_poll(self) -> int:
        return len(self.device_map.registers)


def bench_plant(devices: int) -> Plant:
    """A plant of `devices` CEMS, so the real sink builds the same series as PollFactory."""
    config = {
        "plant": {"id": "bench", "name": "Bench"},
        "devices": [
            {
                "id": f"stack-{i}",
                "map": MODEL,
                "url": f"tcp://127.0.0.1:{1502 + i // 200}",
                "unit": i % 200 + 1,
            }
            for i in range(devices)
        ],
    }
    return parse_plant_config(config, "bench.yaml", Path("."))


def database(server: InfluxDBServer, name: str) -> str:
    server.query(f'DROP DATABASE "{name}"')
    server.create_database(name)
    return name


def points(server: InfluxDBServer, db: str) -> int:
    series = server.query('SELECT count("dust") FROM "cems"', db)
    return series[0]["values"][0][1] if series else 0


async def pipeline(server: InfluxDBServer, folder: Path, polls: int, devices: int) -> Run:
    """Seconds for `polls` polls to go from registers to acknowledged by InfluxDB."""
    db = database(server, "bench_pipeline")
    factory = PollFactory(devices)
    buffer = DurableBuffer(folder / "pipeline.sqlite")
    writer = TimedWriter(make_writer(InfluxConfig(url=server.url, api="v1", database=db, timeout="30s")))
    forwarder = Forwarder(buffer, writer, batch_size=BATCH, dead_letter=folder / "dead")  # flush_interval 1 s
    sink = BufferSink(bench_plant(devices), buffer, forwarder.wakeup, BATCH)
    stop = asyncio.Event()
    base = 1_700_000_000_000_000_000
    with stopwatch(server) as run:
        task = asyncio.create_task(forwarder.run(stop))
        started = time.perf_counter()
        for n in range(polls):
            sink(factory.poll(n % devices, base + n * 1000))
            if n % 200 == 0:
                await asyncio.sleep(0)  # let the forwarder and commits run, as between real polls
        sink.flush()
        produced_at = time.perf_counter()
        produced = produced_at - started
        while buffer.depth:
            await asyncio.sleep(0.01)
    stop.set()
    await task
    forwarder.close()
    buffer.close()
    assert points(server, db) == polls, "pipeline lost points"
    run.posts = writer.summary(produced_at)
    print(
        f"  pipeline: produced in {produced:.2f}s, all acknowledged at {run.seconds:.2f}s; "
        f"CPU: plantwatch {run.own_cpu:.2f}s, influxd {run.influxd_cpu:.2f}s; {run.posts}",
        flush=True,
    )
    return run


def baseline(server: InfluxDBServer, polls: int, devices: int) -> Run:
    """Seconds to POST the same lines, serialized beforehand, in batches of BATCH, gzip."""
    db = database(server, "bench_baseline")
    factory = PollFactory(devices)
    base = 1_700_000_000_000_000_000
    lines = [
        line
        for n in range(polls)
        for line in poll_lines(factory.series[n % devices], factory.poll(n % devices, base + n * 1000))
    ]
    pool = urllib3.PoolManager()
    url = f"{server.url}/write?db={db}&precision=ns"
    with stopwatch(server) as run:
        for i in range(0, len(lines), BATCH):
            body = gzip.compress(("\n".join(lines[i : i + BATCH]) + "\n").encode(), compresslevel=1)
            response = pool.request("POST", url, body=body, headers={"Content-Encoding": "gzip"})
            assert response.status == 204, response.data
    assert points(server, db) == polls, "baseline lost points"
    run.posts = {"posts": -(-len(lines) // BATCH)}
    print(
        f"  baseline: {run.seconds:.2f}s; CPU: poster {run.own_cpu:.2f}s, influxd {run.influxd_cpu:.2f}s",
        flush=True,
    )
    return run


async def outage(folder: Path, seconds: float, rate: int) -> dict[str, object]:
    """Polls at `rate` per second into the buffer while InfluxDB cannot be reached."""
    factory = PollFactory(rate)
    buffer = DurableBuffer(folder / "outage.sqlite", max_bytes=50_000_000_000)
    writer = make_writer(InfluxConfig(url="http://127.0.0.1:9", api="v1", database="x", timeout="2s"))
    forwarder = Forwarder(buffer, writer, batch_size=BATCH, dead_letter=folder / "dead")
    stop = asyncio.Event()
    task = asyncio.create_task(forwarder.run(stop))
    samples: list[tuple[int, float, int, float]] = []  # (elapsed s, rss MB, depth, file MB)
    started = time.monotonic()
    next_sample = started
    tick = 0
    while time.monotonic() - started < seconds:
        ts = time.time_ns()
        for device in range(rate):
            buffer.append(poll_lines(factory.series[device], factory.poll(device, ts + device)))
        tick += 1
        now = time.monotonic()
        if now >= next_sample:
            size = sum(p.stat().st_size for p in folder.glob("outage.sqlite*")) / 2**20
            samples.append((round(now - started), round(rss_mb(), 1), buffer.depth, round(size, 1)))
            t, rss = samples[-1][0], samples[-1][1]
            print(f"  outage t={t:>4}s rss={rss} MB depth={buffer.depth} file={size:.0f} MB", flush=True)
            next_sample += 10
        await asyncio.sleep(max(0.0, started + tick - time.monotonic()))
    stop.set()
    await task
    forwarder.close()
    buffer.close()
    after_warmup = [s for s in samples if s[0] >= 30] or samples
    return {
        "seconds": seconds,
        "polls_per_s": rate,
        "lines_buffered": samples[-1][2],
        "buffer_file_mb": samples[-1][3],
        "rss_mb_first_sample_after_30s": after_warmup[0][1],
        "rss_mb_last": samples[-1][1],
        "rss_mb_max": max(s[1] for s in samples),
        "write_errors": forwarder.stats.write_errors,
        "samples": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--polls", type=int, default=50_000, help="polls for the throughput run (13 readings each)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--outage-seconds", type=float, default=600.0)
    parser.add_argument(
        "--pin",
        action="store_true",
        help="influxd on the first core, this process on the second: InfluxDB on a core of its own, "
        "as on a host of its own, in both the pipeline and the baseline",
    )
    parser.add_argument("--outage-rate", type=int, default=1000, help="polls per second during the outage")
    args = parser.parse_args()
    results: dict[str, object] = {"python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = InfluxDBServer(folder / "influxdb")
        server.start()
        if args.pin:
            pin_apart(server)
        try:
            per_poll = PollFactory(1).readings_per_poll()
            ours, base = [], []
            for _ in range(args.rounds):
                base.append(baseline(server, args.polls, 1000))
                with service_runtime():  # as `plantwatch collect` runs
                    ours.append(asyncio.run(pipeline(server, folder, args.polls, 1000)))
                (folder / "pipeline.sqlite").unlink()
            readings = args.polls * per_poll
            ours_s, base_s = [r.seconds for r in ours], [r.seconds for r in base]
            ours_rate, base_rate = readings / min(ours_s), readings / min(base_s)
            ours_median, base_median = (
                readings / statistics.median(ours_s),
                readings / statistics.median(base_s),
            )
            # Both run on the same cores as influxd: the pipeline cannot take less wall time than
            # all the CPU it and influxd used, spread over every core, nor than its own CPU (decoding
            # through the commit is one thread; the writer thread's share is a few per cent). Pinned,
            # each has one core: no less than the CPU of either.
            cores = os.cpu_count() or 1
            floor_s = statistics.median(
                max(r.own_cpu, r.influxd_cpu if args.pin else (r.own_cpu + r.influxd_cpu) / cores)
                for r in ours
            )
            results["throughput"] = {
                "readings": readings,
                "pipeline_readings_per_s": round(ours_rate),
                "baseline_readings_per_s": round(base_rate),
                "ratio": round(ours_rate / base_rate, 3),
                "ratio_of_medians": round(ours_median / base_median, 3),
                "rounds": args.rounds,
                "plantwatch_cpu_us_per_reading": round(
                    statistics.median(r.own_cpu for r in ours) / readings * 1e6, 2
                ),
                "influxd_cpu_s_baseline": round(statistics.median(r.influxd_cpu for r in base), 2),
                "influxd_cpu_s_pipeline": round(statistics.median(r.influxd_cpu for r in ours), 2),
                "cores": os.cpu_count(),
                "ratio_ceiling_on_these_cores": round(statistics.median(base_s) / floor_s, 3),
                "baseline_post_ms": round(
                    statistics.median(1000 * r.seconds / r.posts["posts"] for r in base), 1
                ),
                "pipeline_posts": {  # medians over the rounds
                    key: statistics.median(r.posts[key] for r in ours) for key in ours[0].posts
                },
                "influxdb": "1.6.7 (Debian), /write, gzip level 1, batches of 5000 lines",
                "pinned": "influxd on one core, plantwatch and the poster on another" if args.pin else None,
            }
            print(json.dumps(results["throughput"], indent=2), flush=True)
        finally:
            server.stop()
        if args.outage_seconds > 0:
            print(f"outage: {args.outage_seconds:.0f} s at {args.outage_rate} polls/s ...", flush=True)
            results["outage"] = asyncio.run(outage(folder, args.outage_seconds, args.outage_rate))
            print(json.dumps({k: v for k, v in results["outage"].items() if k != "samples"}, indent=2))  # type: ignore[union-attr]
    save("influx_ingest", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
