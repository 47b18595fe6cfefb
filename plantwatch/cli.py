"""The `plantwatch` command: validate, probe, simulate, poll, collect, run, alerts, targets, report,
hj212, silence, dashboards, demo.

Only argument parsing lives here; each command's module in `plantwatch.app` is imported when that
command runs, so `plantwatch --help` and `plantwatch validate` start without the rest.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from plantwatch.app.exit_codes import EXIT_BROKEN_PIPE, EXIT_INVALID
from plantwatch.core.durations import parse_duration
from plantwatch.core.logs import configure_logging

# The long-running services log at INFO by default; every other command at WARNING.
SERVICES = {"collect": "INFO", "run": "INFO", "alerts": "INFO"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="plantwatch", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--log-level",
        default=None,
        help=f"DEBUG, INFO, WARNING or ERROR (default: INFO for {', '.join(SERVICES)}; WARNING otherwise)",
    )
    parser.set_defaults(log_level_default="WARNING")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check device maps and plant configs")
    p.add_argument("paths", nargs="+", help="files or folders of YAML files")
    p.set_defaults(run="validate:command")

    p = sub.add_parser("probe", help="read every register of a map once")
    p.add_argument("--map", required=True, help="model id of a shipped map, or a path")
    p.add_argument(
        "--url",
        required=True,
        help="tcp://host:port, rtu+tcp://host:port or serial:///dev/ttyX?baudrate=9600",
    )
    p.add_argument("--unit", type=int, default=1, help="Modbus unit (device) id, default 1")
    p.add_argument("--timeout", type=parse_duration, default=2.0, help="per request, default 2s")
    p.add_argument(
        "--max-skew",
        type=parse_duration,
        default=300.0,
        help="a device clock further ahead than this marks values `bad timestamp` (default 5m)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run="devices:probe")

    p = sub.add_parser("simulate", help="serve a plant's devices from the simulator")
    p.add_argument("--config", required=True, help="plant.yaml")
    _sim_options(p)
    p.add_argument("--duration", type=parse_duration, default=None, help="stop after this long")
    p.set_defaults(run="devices:simulate")

    p = sub.add_parser("poll", help="poll a plant's devices and print readings")
    p.add_argument("--config", required=True, help="plant.yaml")
    p.add_argument("--duration", type=parse_duration, default=None, help="stop after this long")
    p.add_argument("--json", action="store_true", help="one JSON reading per line")
    p.set_defaults(run="devices:poll")

    p = sub.add_parser("collect", help="poll devices into InfluxDB through the durable buffer")
    p.add_argument("--config", required=True, help="plant.yaml with an `influx` section")
    p.add_argument("--health-interval", type=parse_duration, default=10.0, help="default 10s")
    p.set_defaults(run="collect:command", log_level_default=SERVICES["collect"])

    p = sub.add_parser("run", help="collect and the alert service in one process")
    p.add_argument("--config", required=True, help="plant.yaml with an `influx` section")
    p.add_argument("--health-interval", type=parse_duration, default=10.0, help="default 10s")
    p.set_defaults(run="collect:command", log_level_default=SERVICES["run"])

    p = sub.add_parser("alerts", help="the alert service alone, on the readings bus over MQTT")
    p.add_argument("--config", required=True, help="plant.yaml with an `mqtt` section")
    p.add_argument("--health-interval", type=parse_duration, default=10.0, help="default 10s")
    p.add_argument(
        "--worker",
        metavar="I/N",
        help="worker I of N: watch only its share of the devices (each device's whole stream, its "
        "own session and state files); default: every device, on an MQTT 5 shared subscription",
    )
    p.add_argument(
        "--mqtt-url",
        help="read the readings bus from this broker instead of the config's mqtt.url: a central "
        "broker the plant's edge broker bridges to (docs/deployment.md); same TLS and credentials",
    )
    p.set_defaults(run="alerts:command", log_level_default=SERVICES["alerts"])

    p = sub.add_parser("targets", help="list the plan targets and their sources")
    p.add_argument("--config", help="plant.yaml: apply its alerts.targets overrides")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(run="targets:command")

    p = sub.add_parser(
        "report",
        help="a month's compliance report (or a day's digest) from InfluxDB",
        description="A month's compliance report or a day's digest, read from the plant's InfluxDB, "
        "in the plant's zone (alerts.timezone). See docs/reports.md.",
    )
    p.add_argument("--config", required=True, help="plant.yaml with an `influx` section")
    period = p.add_mutually_exclusive_group(required=True)
    period.add_argument("--month", help="YYYY-MM, in the plant's time zone: the monthly report")
    period.add_argument("--day", help="YYYY-MM-DD, in the plant's time zone: the daily digest")
    p.add_argument("--format", choices=["html", "pdf", "csv", "text"], default="html", help="default html")
    p.add_argument("--lang", choices=["zh", "en"], default="zh", help="default zh")
    p.add_argument("--out", help="file to write (default plantwatch-<plant>-<period>-<lang>.<ext>)")
    p.add_argument(
        "--send", action="store_true", help="mail it to the recipients instead, each in their own language"
    )
    p.add_argument("--again", action="store_true", help="with --send: also to recipients who already had it")
    p.set_defaults(run="reports:command")

    p = sub.add_parser("hj212", help="HJ 212-2017 tools: decode a packet, listen as a platform")
    hj212 = p.add_subparsers(dest="hj212_command", required=True)
    q = hj212.add_parser("decode", help="check a packet's length and CRC and print its fields")
    q.add_argument("packet", help="the packet (##...), or - to read it from standard input")
    q.set_defaults(run="hj212:decode_command")
    q = hj212.add_parser("listen", help="a platform stand-in: print and answer what a station sends")
    q.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    q.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    q.set_defaults(run="hj212:listen_command")

    p = sub.add_parser("silence", help="mute notifications for a device or rule until a time")
    p.add_argument("--config", required=True, help="plant.yaml")
    p.add_argument("--device", help="only this device")
    p.add_argument("--rule", help="only this rule (a target id; its early warning too)")
    p.add_argument("--all", action="store_true", help="the whole plant")
    p.add_argument("--for", dest="duration", type=parse_duration, help="how long, e.g. 2h")
    p.add_argument("--comment", default="", help="why (shown in the list)")
    p.add_argument("--end", type=int, help="end the silence with this number now")
    p.set_defaults(run="silence:command")

    p = sub.add_parser("dashboards", help="regenerate, check or push the Grafana dashboards")
    p.add_argument("action", choices=["build", "push"], help="build: regenerate the JSON; push: upload it")
    p.add_argument("--check", action="store_true", help="build: only say whether the JSON is current")
    p.add_argument("--config", help="plant.yaml: also select the fields of the plant's own maps by role")
    p.add_argument("--out", help="build: write to this folder (needed with --config)")
    p.add_argument("--url", default="http://127.0.0.1:3000", help="push: Grafana's URL")
    p.add_argument("--token-env", default="GRAFANA_TOKEN", help="push: variable holding the token")
    p.add_argument("--folder-uid", help="push: the folder to put them in")
    p.set_defaults(run="dashboards:command")

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
    p.set_defaults(run="demo:command")
    return parser


def _sim_options(p: argparse.ArgumentParser, speed: float = 1.0) -> None:
    p.add_argument("--seed", type=int, default=0, help="same seed, same values (default 0)")
    p.add_argument(
        "--speed", type=float, default=speed, help=f"simulated seconds per second (default {speed:g})"
    )


def command(name: str) -> Callable[[argparse.Namespace], int]:
    """`module:function` under plantwatch.app, imported now."""
    module, function = name.split(":")
    run: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(f"plantwatch.app.{module}"), function
    )
    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `plantwatch` console script."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level or args.log_level_default)
    from plantwatch.config.problems import ConfigError

    try:
        return command(args.run)(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:
        # The reader went away (`plantwatch targets | head -1`): stop quietly, as Unix tools do.
        # Python would complain again when it flushes stdout at exit, so point stdout at nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
