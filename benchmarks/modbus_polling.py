"""Modbus polling benchmarks, each against a baseline measured in the same run.

    python -m benchmarks.modbus_polling            # all three, about 2.5 minutes (from the repo root)
    python -m benchmarks.modbus_polling --quick    # shorter windows, for a smoke run

1. throughput: polls/s of plantwatch's poller vs a bare pymodbus loop sending the same
   requests to the same simulator process (ratio, target >= 0.8).
2. requests: requests per poll for every shipped map vs the minimum found by exhaustive
   search (target: equal).
3. scale: 1,000 simulated devices at 1 s for 60 s in one collector process: share of polls
   on time (finished before the device's next tick; target >= 99.9 %) and peak RSS
   (target < 200 MB).

Simulators run in their own processes; results are printed and written to
benchmarks/results/modbus_polling.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pymodbus.client import AsyncModbusTcpClient

from benchmarks.report import save
from plantwatch.collector.modbus.plan import plan_requests
from plantwatch.collector.modbus.poller import ModbusDevicePoller
from plantwatch.collector.modbus.transport import FUNCTION_NAMES, ModbusBus
from plantwatch.collector.scheduler import Collector
from plantwatch.config.device_map import DeviceMap, Register, load_device_map, shipped_maps_dir
from plantwatch.config.plant import DeviceConfig, load_plant_config
from plantwatch.core.reading import PollResult
from plantwatch.simulator.device import SimulatedDevice
from plantwatch.simulator.server import SimulatorServer
from tests.services.processes import wait_for_port


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_simulator(devices: list[tuple[str, int, int]], folder: Path) -> subprocess.Popen[bytes]:
    """`plantwatch simulate` in its own process for (model, port, unit) devices."""
    lines = ["plant: {id: bench, name: Bench}", "devices:"]
    for i, (model, port, unit) in enumerate(devices):
        lines.append(f'  - {{id: d{i}, map: {model}, url: "tcp://127.0.0.1:{port}", unit: {unit}}}')
    config = folder / f"sim-{devices[0][1]}.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "plantwatch", "simulate", "--config", str(config)],
        stdout=subprocess.DEVNULL,
    )
    for port in sorted({port for _, port, _ in devices}):
        wait_for_port(port)
    return proc


# --- 1. throughput -------------------------------------------------------------------------


async def bare_polls(port: int, registers: list[Register], seconds: float) -> float:
    """Polls/s of a plain pymodbus client sending the planned requests, decoding nothing."""
    client = AsyncModbusTcpClient("127.0.0.1", port=port, retries=0, reconnect_delay=0)
    await client.connect()
    requests = plan_requests(registers)
    polls, end = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < end:
        for request in requests:
            method = getattr(client, FUNCTION_NAMES[request.function])
            response = await method(request.address, count=request.count, device_id=1)
            assert not response.isError()
        polls += 1
    elapsed = time.perf_counter() - started
    client.close()
    return polls / elapsed


async def plantwatch_polls(port: int, model: str, seconds: float) -> float:
    """Polls/s of plantwatch's bus + poller: locking, decoding, scaling, quality, readings."""
    device = DeviceConfig(id="bench", map=model, url=f"tcp://127.0.0.1:{port}")
    bus = ModbusBus(device.endpoint)
    poller = ModbusDevicePoller(device, load_device_map(shipped_maps_dir() / f"{model}.yaml"), bus)
    polls, end = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < end:
        result = await poller.poll()
        assert result.ok, [r.quality for r in result.readings if not r.good]
        polls += 1
    elapsed = time.perf_counter() - started
    bus.close()
    return polls / elapsed


def throughput(folder: Path, seconds: float, rounds: int) -> dict[str, object]:
    model = "saf_ferrosilicon"  # 12 values in 3 requests (holding, input, coil)
    port = free_port()
    sim = start_simulator([(model, port, 1)], folder)
    try:
        registers = load_device_map(shipped_maps_dir() / f"{model}.yaml").registers
        bare, ours = [], []
        for _ in range(rounds):  # interleaved, so drift affects both sides alike
            bare.append(asyncio.run(bare_polls(port, registers, seconds)))
            ours.append(asyncio.run(plantwatch_polls(port, model, seconds)))
    finally:
        sim.terminate()
        sim.wait(10)
    bare_median, ours_median = statistics.median(bare), statistics.median(ours)
    return {
        "model": model,
        "requests_per_poll": len(plan_requests(registers)),
        "bare_pymodbus_polls_per_s": round(bare_median, 1),
        "plantwatch_polls_per_s": round(ours_median, 1),
        "ratio": round(ours_median / bare_median, 3),
        "rounds": rounds,
        "seconds_per_round": seconds,
    }


# --- 2. requests per poll ------------------------------------------------------------------


def minimum_requests(registers: list[Register], max_insert: int) -> int:
    """Fewest requests by exhaustive search over every way to split each table's sorted spans."""
    total = 0
    for table in {r.table for r in registers}:
        spans = sorted((r.address, r.end) for r in registers if r.table == table)
        limit = 2000 if table in ("coil", "discrete") else 125
        best = [0] + [10**9] * len(spans)
        for j in range(1, len(spans) + 1):
            for i in range(1, j + 1):
                group = spans[i - 1 : j]
                reach, ok = group[0][1], True
                for start, end in group[1:]:
                    ok = ok and start - reach <= max_insert
                    reach = max(reach, end)
                if ok and reach - group[0][0] <= limit:
                    best[j] = min(best[j], best[i - 1] + 1)
        total += best[-1]
    return total


async def requests_on_the_wire(model: str) -> int:
    device_map = load_device_map(shipped_maps_dir() / f"{model}.yaml")
    sim = SimulatedDevice(device_map, 1)
    async with SimulatorServer([sim]) as server:
        device = DeviceConfig(id="r", map=model, url=f"tcp://127.0.0.1:{server.port}")
        bus = ModbusBus(device.endpoint)
        await ModbusDevicePoller(device, device_map, bus).poll()
        bus.close()
    return sim.reads


def requests_per_poll() -> dict[str, object]:
    rows = {}
    for path in sorted(shipped_maps_dir().glob("*.yaml")):
        device_map = load_device_map(path)
        if not isinstance(device_map, DeviceMap):
            continue  # MQTT maps have no registers
        registers = device_map.registers
        rows[path.stem] = {
            "registers": len(registers),
            "requests_on_the_wire": asyncio.run(requests_on_the_wire(path.stem)),
            "minimum": minimum_requests(registers, max_insert=10),
        }
    return {
        "maps": rows,
        "all_minimal": all(r["requests_on_the_wire"] == r["minimum"] for r in rows.values()),
    }


# --- 3. scale ------------------------------------------------------------------------------


async def scale_collector(config: Path, seconds: float, warmup: float) -> dict[str, object]:
    """Run in the collector's own process: poll every device, score the polls started in the
    window (devices share timers, so a poll, not a scheduler job, is the unit: its start and end
    come with its result; a tick a device skipped is counted by the collector)."""
    plant = load_plant_config(config)
    interval = {d.id: d.interval for d in plant.devices_of(DeviceMap)}
    outcomes: list[tuple[float, float]] = []  # (started, finished) of every poll
    bad_values = 0

    def sink(result: PollResult) -> None:
        nonlocal bad_values
        bad_values += sum(not r.good for r in result.readings)
        outcomes.append((result.started_ns / 1e9, result.finished_ns / 1e9))

    async with Collector(plant, sink) as collector:
        window_start = time.time() + warmup
        await asyncio.sleep(warmup)
        skipped_before = collector.skipped.total()
        await asyncio.sleep(seconds)
        window_end = window_start + seconds
        skipped = collector.skipped.total() - skipped_before
    any_interval = next(iter(interval.values()))
    scored = [o for o in outcomes if window_start <= o[0] < window_end - any_interval]
    on_time = [o for o in scored if o[1] - o[0] < any_interval]
    lags = sorted(o[1] - o[0] for o in scored)
    expected = len(interval) * int((window_end - any_interval - window_start) / any_interval)
    return {
        "devices": len(interval),
        "interval_s": any_interval,
        "window_s": seconds,
        "ticks_expected": expected,
        "ticks_scored": len(scored),
        "on_time": len(on_time),
        "on_time_share": round(len(on_time) / max(expected, len(scored), 1), 5),
        "skipped": skipped,
        "bad_values": bad_values,
        "poll_ms_p50": round(1000 * lags[len(lags) // 2], 1) if lags else None,
        "poll_ms_p99": round(1000 * lags[int(len(lags) * 0.99)], 1) if lags else None,
        "poll_ms_max": round(1000 * lags[-1], 1) if lags else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def scale(folder: Path, devices: int, seconds: float, per_port: int) -> dict[str, object]:
    model = "dust_cems"
    ports = [free_port() for _ in range((devices + per_port - 1) // per_port)]
    layout = [(model, ports[i // per_port], i % per_port + 1) for i in range(devices)]
    sims = [start_simulator(layout[i : i + per_port * 5], folder) for i in range(0, devices, per_port * 5)]
    config = folder / "collector.yaml"
    lines = ["plant: {id: bench, name: Bench}", "devices:"]
    for i, (m, port, unit) in enumerate(layout):
        url = f"tcp://127.0.0.1:{port}"
        lines.append(f'  - {{id: d{i}, map: {m}, url: "{url}", unit: {unit}, interval: 1s, timeout: 900ms}}')
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        command = [sys.executable, "-m", "benchmarks.modbus_polling", "--scale-collector", str(config)]
        out = subprocess.run(
            [*command, "--seconds", str(seconds)], capture_output=True, text=True, check=True
        )
    finally:
        for sim in sims:
            sim.terminate()
            sim.wait(10)
    result = json.loads(out.stdout.splitlines()[-1])
    result["simulator_processes"] = len(sims)
    result["devices_per_port"] = per_port
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short windows (smoke run, numbers are noisy)")
    parser.add_argument("--only", choices=["throughput", "requests", "scale"], help="run one benchmark")
    parser.add_argument("--scale-collector", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_collector:
        print(json.dumps(asyncio.run(scale_collector(args.scale_collector, args.seconds, warmup=5.0))))
        return 0

    results: dict[str, object] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.only in (None, "throughput"):
            print("throughput: plantwatch poller vs bare pymodbus loop ...", flush=True)
            results["throughput"] = throughput(folder, 2.0 if args.quick else 5.0, 3 if args.quick else 5)
            print(json.dumps(results["throughput"], indent=2), flush=True)
        if args.only in (None, "requests"):
            print("requests per poll vs minimum ...", flush=True)
            results["requests"] = requests_per_poll()
            print(json.dumps(results["requests"], indent=2), flush=True)
        if args.only in (None, "scale"):
            print("scale: 1000 devices at 1 s ...", flush=True)
            results["scale"] = scale(folder, 1000, 15.0 if args.quick else 60.0, per_port=50)
            print(json.dumps(results["scale"], indent=2), flush=True)
    save("modbus_polling", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
