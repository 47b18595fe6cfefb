"""The `plantwatch` command: validate, probe, simulate, poll, collect, run, alerts, targets, silence,
dashboards, demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from plantwatch.config.units import parse_duration

if TYPE_CHECKING:  # each command imports what it needs when it runs, so `--help` starts fast
    from plantwatch.collector.reading import PollResult, Reading
    from plantwatch.collector.scheduler import Collector
    from plantwatch.config.device_map import DeviceMap
    from plantwatch.config.plant import Plant

log = logging.getLogger("plantwatch")

EXIT_OK, EXIT_INVALID, EXIT_BAD_VALUES = 0, 1, 3
EXIT_BROKEN_PIPE = 128 + 13  # as a process killed by SIGPIPE
# The long-running services log at INFO by default; every other command at WARNING.
SERVICES = {"collect": "INFO", "run": "INFO", "alerts": "INFO"}


def sample_plant_path() -> Path:
    """The sample plant config shipped with the Modbus input (also the demo plant)."""
    return Path(str(resources.files("plantwatch.collector.modbus") / "sample.plant.yaml"))


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


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate maps and plant configs; one line per problem."""
    from plantwatch.config.validate import validate_paths

    files, problems = validate_paths([Path(p) for p in args.paths])
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {len(files)} file(s)")
        return EXIT_INVALID
    print(f"{len(files)} file(s) valid")
    return EXIT_OK


async def _probe(args: argparse.Namespace, device_map: DeviceMap) -> PollResult:
    from plantwatch.collector.modbus.poller import ModbusDevicePoller
    from plantwatch.collector.modbus.transport import ModbusBus
    from plantwatch.config.plant import DeviceConfig

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
        return await ModbusDevicePoller(device, device_map, bus).poll()
    finally:
        bus.close()


def cmd_probe(args: argparse.Namespace) -> int:
    """Read every register of a map once from one device."""
    from plantwatch.config.device_map import DeviceMap, load_device_map, map_not_found, resolve_map
    from plantwatch.config.plant import parse_endpoint

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
                },
                ensure_ascii=False,
            )
        )
    else:
        print(readings_table(result.readings))
        print(f"\n{result.requests} request(s) in {(result.finished_ns - result.started_ns) / 1e6:.1f} ms")
    return EXIT_OK if result.ok else EXIT_BAD_VALUES


async def _serve(plant: Plant, seed: int, speed: float, duration: float | None) -> None:

    from plantwatch.simulator.server import servers_for_plant

    async with contextlib.AsyncExitStack() as stack:
        for server in servers_for_plant(plant, seed=seed, speed=speed):
            await stack.enter_async_context(server)
            units = ", ".join(str(d.unit) for d in server.devices)
            models = ", ".join(d.device_map.model for d in server.devices)
            print(f"simulating {models} at tcp://{server.host}:{server.port} (unit {units})", flush=True)
        print(f"speed x{speed:g}, seed {seed}; Ctrl-C stops", flush=True)
        await asyncio.sleep(duration if duration is not None else float("inf"))


def cmd_simulate(args: argparse.Namespace) -> int:
    """Serve every TCP device of a plant config from the simulator."""
    from plantwatch.config.plant import load_plant_config

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

    from plantwatch.collector.scheduler import Collector

    async with Collector(plant, lambda result: _print_result(result, as_json)) as collector:
        await asyncio.sleep(duration if duration is not None else float("inf"))
    return collector


def _summary(collector: Collector, elapsed: float) -> str:
    polls = sum(collector.polls.values())
    skipped = sum(collector.skipped.values())
    return f"{polls} polls of {len(collector.pollers)} device(s) in {elapsed:.1f}s, {skipped} skipped"


def cmd_poll(args: argparse.Namespace) -> int:
    """Poll every device of a plant config on its interval and print the readings."""
    from plantwatch.config.mqtt_map import MqttDeviceMap
    from plantwatch.config.plant import load_plant_config

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


def cmd_demo(args: argparse.Namespace) -> int:
    """Every sector simulated, collected and alerted on in one process, with a live view."""
    from plantwatch.demo import DemoOptions, run_demo, sectors_in_buffer

    options = DemoOptions(
        data_dir=Path(args.data_dir),
        seed=args.seed,
        speed=args.speed,
        duration=args.duration,
        refresh=args.refresh,
        influx_url=args.influx_url,
        influx_database=args.influx_database,
        mqtt_url=args.mqtt_url,
        smtp=args.smtp,
    )
    summary = asyncio.run(run_demo(options))
    sectors = sectors_in_buffer(options.data_dir / "plantwatch-buffer.sqlite")
    print(f"readings waiting in the buffer per sector: {dict(sorted(sectors.items())) or 'none'}")
    print(
        f"mail: {summary['mails_in_outbox']} in the outbox, {summary['mails_sent']} sent "
        f"({summary['outbox']}); {summary['lines_in_buffer']} line(s) buffered for InfluxDB"
    )
    return EXIT_OK


def cmd_collect(args: argparse.Namespace) -> int:
    """Poll devices into the durable buffer and forward it to InfluxDB until SIGINT/SIGTERM;
    `run` adds the alert service in the same process."""
    from plantwatch.collector.errors import CollectorError
    from plantwatch.collector.service import collect
    from plantwatch.config.plant import load_plant_config
    from plantwatch.config.problems import ConfigError, Problem
    from plantwatch.config.secrets import SecretError

    path = Path(args.config)
    plant = load_plant_config(path)
    if plant.config.influx is None:
        raise ConfigError(
            [Problem(str(path), "influx", f"required by `plantwatch {args.command}`: where readings go")]
        )
    try:
        asyncio.run(
            collect(
                plant,
                plant.config.influx,
                health_interval=args.health_interval,
                with_alerts=args.command == "run",
            )
        )
    except (CollectorError, SecretError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def cmd_alerts(args: argparse.Namespace) -> int:
    """The alert service alone, reading the readings bus over MQTT."""
    from plantwatch.alerts.bus_input import run_alerts
    from plantwatch.config.plant import load_plant_config
    from plantwatch.config.problems import ConfigError, Problem
    from plantwatch.config.secrets import SecretError

    path = Path(args.config)
    plant = load_plant_config(path)
    if plant.config.mqtt is None:
        raise ConfigError(
            [Problem(str(path), "mqtt", "required by `plantwatch alerts`: the broker of the readings bus")]
        )
    try:
        asyncio.run(run_alerts(plant))
    except SecretError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def cmd_targets(args: argparse.Namespace) -> int:
    """List the plan targets (with a plant's overrides) and where each comes from."""
    from plantwatch.alerts.targets.catalogue import resolve_targets
    from plantwatch.config.alerts import AlertsConfig
    from plantwatch.config.plant import load_plant_config

    if args.config:
        plant = load_plant_config(Path(args.config))
        targets = resolve_targets(plant.config.alerts, args.config)
    else:
        targets = resolve_targets(AlertsConfig(), "catalogue")
    if args.json:
        print(json.dumps([t.as_json() for t in targets], ensure_ascii=False, indent=2))
        return EXIT_OK
    for t in targets:
        value = "plant must set" if t.value is None else f"{t.comparator} {t.value:g} {t.unit}"
        print(f"{t.id}  [{t.severity}, {t.source}]")
        applies = f"{t.sector}/{t.product or '*'}"
        print(f"    {applies}: {t.indicator}, {value}, window {t.window}, from {t.effective}")
        print(f"    {t.plan} {t.clause}: {t.quote}")
    return EXIT_OK


def cmd_silence(args: argparse.Namespace) -> int:
    """Add, list or end silences in the alert service's state file."""
    from plantwatch.alerts.state import StateStore
    from plantwatch.config.plant import load_plant_config

    plant = load_plant_config(Path(args.config))
    base = plant.path.parent if plant.path else Path.cwd()
    store = StateStore(base / plant.config.alerts.state)
    now = time.time_ns()
    try:
        if args.end is not None:
            if not store.expire_silence(args.end, now):
                print(f"no active silence {args.end}", file=sys.stderr)
                return EXIT_INVALID
            print(f"silence {args.end} ended")
        elif args.duration is not None:
            if not (args.device or args.rule or args.all):
                print(
                    "name a --device or a --rule, or pass --all to silence the whole plant", file=sys.stderr
                )
                return EXIT_INVALID
            ends = now + int(args.duration * 1e9)
            number = store.add_silence(
                ends,
                now,
                plant=plant.config.plant.id,
                device=args.device,
                rule=args.rule,
                comment=args.comment,
            )
            print(f"silence {number}: until {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(ends / 1e9))}")
        for silence in store.silences(now):
            until = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(silence.ends_ns / 1e9))
            print(
                f"{silence.id}: device {silence.device or '*'} rule {silence.rule or '*'} until {until}"
                f"  {silence.comment}"
            )
    finally:
        store.close()
    return EXIT_OK


def cmd_dashboards(args: argparse.Namespace) -> int:
    """Regenerate or check the committed dashboard JSON, or push it to Grafana."""
    from plantwatch.dashboards.files import load_dashboards, stale_dashboards, write_dashboards
    from plantwatch.dashboards.push import PushError, push_dashboards

    if args.action == "build":
        if args.check:
            problems = stale_dashboards()
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                print("run `plantwatch dashboards build` and commit the result", file=sys.stderr)
            return EXIT_INVALID if problems else EXIT_OK
        for path in write_dashboards():
            print(path)
        return EXIT_OK
    token = os.environ.get(args.token_env)
    if not token:
        print(
            f"dashboards push: environment variable {args.token_env} (the Grafana token) is not set",
            file=sys.stderr,
        )
        return EXIT_INVALID
    try:
        push_dashboards(load_dashboards(), args.url, token, folder_uid=args.folder_uid, progress=print)
    except PushError as exc:
        print(f"dashboards push: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="plantwatch", description=__doc__)
    parser.add_argument(
        "--log-level",
        default=None,
        help=f"DEBUG, INFO, WARNING or ERROR (default: INFO for {', '.join(SERVICES)}; WARNING otherwise)",
    )
    parser.set_defaults(log_level_default="WARNING")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check device maps and plant configs")
    p.add_argument("paths", nargs="+", help="files or folders of YAML files")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("probe", help="read every register of a map once")
    p.add_argument("--map", required=True, help="model id of a shipped map, or a path")
    p.add_argument(
        "--url",
        required=True,
        help="tcp://host:port, rtu+tcp://host:port or serial:///dev/ttyX?baudrate=9600",
    )
    p.add_argument("--unit", type=int, default=1, help="Modbus unit (device) id, default 1")
    p.add_argument("--timeout", type=parse_duration, default=2.0, help="per request, default 2s")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("simulate", help="serve a plant's devices from the simulator")
    p.add_argument("--config", required=True, help="plant.yaml")
    _sim_options(p)
    p.add_argument("--duration", type=parse_duration, default=None, help="stop after this long")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("poll", help="poll a plant's devices and print readings")
    p.add_argument("--config", required=True, help="plant.yaml")
    p.add_argument("--duration", type=parse_duration, default=None, help="stop after this long")
    p.add_argument("--json", action="store_true", help="one JSON reading per line")
    p.set_defaults(func=cmd_poll)

    p = sub.add_parser("collect", help="poll devices into InfluxDB through the durable buffer")
    p.add_argument("--config", required=True, help="plant.yaml with an `influx` section")
    p.add_argument("--health-interval", type=parse_duration, default=10.0, help="default 10s")
    p.set_defaults(func=cmd_collect, log_level_default=SERVICES["collect"])

    p = sub.add_parser("run", help="collect and the alert service in one process")
    p.add_argument("--config", required=True, help="plant.yaml with an `influx` section")
    p.add_argument("--health-interval", type=parse_duration, default=10.0, help="default 10s")
    p.set_defaults(func=cmd_collect, log_level_default=SERVICES["run"])

    p = sub.add_parser("alerts", help="the alert service alone, on the readings bus over MQTT")
    p.add_argument("--config", required=True, help="plant.yaml with an `mqtt` section")
    p.set_defaults(func=cmd_alerts, log_level_default=SERVICES["alerts"])

    p = sub.add_parser("targets", help="list the plan targets and their sources")
    p.add_argument("--config", help="plant.yaml: apply its alerts.targets overrides")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(func=cmd_targets)

    p = sub.add_parser("silence", help="mute notifications for a device or rule until a time")
    p.add_argument("--config", required=True, help="plant.yaml")
    p.add_argument("--device", help="only this device")
    p.add_argument("--rule", help="only this rule (a target id; its early warning too)")
    p.add_argument("--all", action="store_true", help="the whole plant")
    p.add_argument("--for", dest="duration", type=parse_duration, help="how long, e.g. 2h")
    p.add_argument("--comment", default="", help="why (shown in the list)")
    p.add_argument("--end", type=int, help="end the silence with this number now")
    p.set_defaults(func=cmd_silence)

    p = sub.add_parser("dashboards", help="regenerate, check or push the Grafana dashboards")
    p.add_argument("action", choices=["build", "push"], help="build: regenerate the JSON; push: upload it")
    p.add_argument("--check", action="store_true", help="build: only say whether the JSON is current")
    p.add_argument("--url", default="http://127.0.0.1:3000", help="push: Grafana's URL")
    p.add_argument("--token-env", default="GRAFANA_TOKEN", help="push: variable holding the token")
    p.add_argument("--folder-uid", help="push: the folder to put them in")
    p.set_defaults(func=cmd_dashboards)

    p = sub.add_parser("demo", help="every sector simulated, collected and alerted on, with a live view")
    _sim_options(p, speed=600.0)
    p.add_argument(
        "--duration", type=parse_duration, default=None, help="stop after this long (default: Ctrl-C)"
    )
    p.add_argument(
        "--data-dir",
        default="plantwatch-demo",
        help="buffer, alert state, outbox (default ./plantwatch-demo)",
    )
    p.add_argument("--refresh", type=parse_duration, default=2.0, help="live view refresh, default 2s")
    p.add_argument("--influx-url", help="write to this InfluxDB (v1 /write API) instead of only buffering")
    p.add_argument("--influx-database", default="plant", help="with --influx-url, default plant")
    p.add_argument(
        "--mqtt-url",
        help="publish the readings bus to this MQTT 5 broker, e.g. mqtt://127.0.0.1:1883 "
        "(default: an embedded amqtt broker on a free port)",
    )
    p.add_argument("--smtp", help="HOST:PORT of a mail catcher (no TLS); default: mail stays in the outbox")
    p.set_defaults(func=cmd_demo)
    return parser


def _sim_options(p: argparse.ArgumentParser, speed: float = 1.0) -> None:
    p.add_argument("--seed", type=int, default=0, help="same seed, same values (default 0)")
    p.add_argument(
        "--speed", type=float, default=speed, help=f"simulated seconds per second (default {speed:g})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `plantwatch` console script."""
    args = build_parser().parse_args(argv)
    level = (args.log_level or args.log_level_default).upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("pymodbus", "apscheduler"):  # they log every request / job run at INFO
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    from plantwatch.config.problems import ConfigError

    try:
        return args.func(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:
        # The reader went away (`plantwatch targets | head -1`): stop quietly, as Unix tools do.
        # Python would complain again when it flushes stdout at exit, so point stdout at nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
