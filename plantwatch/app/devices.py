"""The commands that talk to devices: `probe` (read a map once), `simulate` (serve a plant's
devices), `poll` (poll a plant's devices and print the readings)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from plantwatch.app.exit_codes import EXIT_BAD_VALUES, EXIT_INVALID, EXIT_OK
from plantwatch.collector.modbus.poller import ModbusDevicePoller
from plantwatch.collector.modbus.transport import ModbusBus
from plantwatch.collector.scheduler import Collector
from plantwatch.config.device_map import DeviceMap, load_device_map, map_not_found, resolve_map
from plantwatch.config.mqtt_map import MqttDeviceMap
from plantwatch.config.plant import DeviceConfig, Plant, load_plant_config, parse_endpoint
from plantwatch.core.reading import PollResult, Reading
from plantwatch.simulator.server import servers_for_plant


def format_value(value: object) -> str:
    """A value as a person reads it: floats to 4 decimals, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def readings_table(readings: Sequence[Reading]) -> str:
    """Readings as an aligned text table."""
    rows = [("field", "value", "unit", "quality")]
    rows += [(r.field, format_value(r.value), r.unit or "", r.quality) for r in readings]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}" for row in rows
    )


async def _probe(args: argparse.Namespace, device_map: DeviceMap) -> PollResult:
    device = DeviceConfig(
        id="probe",
        map=device_map.model,
        url=args.url,
        unit=args.unit,
        interval=args.timeout,
        timeout=args.timeout,
    )
    bus = ModbusBus(device.endpoint, timeout=device.timeout)
    try:
        return await ModbusDevicePoller(device, device_map, bus, max_skew=args.max_skew).poll()
    finally:
        bus.close()


def probe(args: argparse.Namespace) -> int:
    """Read every register of a map once from one device."""
    try:
        parse_endpoint(args.url)
    except ValueError as exc:
        print(f"--url: {exc}", file=sys.stderr)
        return EXIT_INVALID
    map_path = resolve_map(args.map, Path.cwd())
    if not map_path.exists():
        print(f"--map: {map_not_found(args.map, map_path)}", file=sys.stderr)
        return EXIT_INVALID
    device_map = load_device_map(map_path)
    if not isinstance(device_map, DeviceMap):
        print(f"--map: {args.map!r} is an MQTT map; probe reads Modbus devices", file=sys.stderr)
        return EXIT_INVALID
    result = asyncio.run(_probe(args, device_map))
    if args.json:
        print(
            json.dumps(
                {
                    "values": {r.field: r.value for r in result.readings},
                    "units": {r.field: r.unit for r in result.readings},
                    "quality": {r.field: r.quality for r in result.readings},
                    "timestamp_ns": {r.field: r.timestamp_ns for r in result.readings},
                },
                ensure_ascii=False,
            )
        )
    else:
        print(readings_table(result.readings))
        print(f"\n{result.requests} request(s) in {(result.finished_ns - result.started_ns) / 1e6:.1f} ms")
        if device_map.clock_registers() and result.readings:
            stamp = datetime.fromtimestamp(result.readings[0].timestamp_ns / 1e9).astimezone()
            print(f"device clock: {stamp.isoformat(timespec='seconds')} (this machine's zone)")
    return EXIT_OK if result.ok else EXIT_BAD_VALUES


async def _serve(plant: Plant, seed: int, speed: float, duration: float | None) -> None:
    async with contextlib.AsyncExitStack() as stack:
        for server in servers_for_plant(plant, seed=seed, speed=speed):
            await stack.enter_async_context(server)
            units = ", ".join(str(d.unit) for d in server.devices)
            models = ", ".join(d.device_map.model for d in server.devices)
            print(f"simulating {models} at tcp://{server.host}:{server.port} (unit {units})", flush=True)
        print(f"speed x{speed:g}, seed {seed}; Ctrl-C stops", flush=True)
        await asyncio.sleep(duration if duration is not None else float("inf"))


def simulate(args: argparse.Namespace) -> int:
    """Serve every TCP device of a plant config from the simulator."""
    plant = load_plant_config(Path(args.config))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(plant, args.seed, args.speed, args.duration))
    return EXIT_OK


def _print_result(result: PollResult, as_json: bool) -> None:
    if as_json:
        for r in result.readings:
            print(
                json.dumps(
                    {
                        "device": r.device,
                        "field": r.field,
                        "value": r.value,
                        "unit": r.unit,
                        "role": r.role,
                        "quality": r.quality,
                        "timestamp_ns": r.timestamp_ns,
                    },
                    ensure_ascii=False,
                ),
                flush=True,
            )
        return
    good = sum(r.good for r in result.readings)
    shown = ", ".join(f"{r.field}={format_value(r.value)}" for r in result.readings[:4])
    bad = sorted({r.quality for r in result.readings if not r.good})
    status = "ok" if not bad else "BAD: " + "; ".join(bad)
    print(f"{result.device:<10} {good}/{len(result.readings)} good  {shown}  [{status}]", flush=True)


async def _poll(plant: Plant, duration: float | None, as_json: bool) -> Collector:

    async with Collector(plant, lambda result: _print_result(result, as_json)) as collector:
        await asyncio.sleep(duration if duration is not None else float("inf"))
    return collector


def _summary(collector: Collector, elapsed: float) -> str:
    polls = sum(collector.polls.values())
    skipped = sum(collector.skipped.values())
    return f"{polls} polls of {len(collector.pollers)} device(s) in {elapsed:.1f}s, {skipped} skipped"


def poll(args: argparse.Namespace) -> int:
    """Poll every device of a plant config on its interval and print the readings."""
    plant = load_plant_config(Path(args.config))
    mqtt_devices = [d.id for d in plant.devices_of(MqttDeviceMap)]
    if mqtt_devices:
        print(
            f"poll reads Modbus devices; MQTT devices ({', '.join(mqtt_devices)}) come in with `collect`",
            file=sys.stderr,
        )
    started = time.monotonic()
    with contextlib.suppress(KeyboardInterrupt):
        collector = asyncio.run(_poll(plant, args.duration, args.json))
        print(_summary(collector, time.monotonic() - started), file=sys.stderr)
    return EXIT_OK
