"""`plantwatch demo`: the sample plant (every sector) against the simulator, an MQTT broker, the
collector and the alert service in one process, with a live view of every device's KPI against
its target."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import yaml

from plantwatch.alerts.service import AlertService
from plantwatch.app.collect import collect
from plantwatch.app.embedded_broker import PROTOCOL_VERSION, EmbeddedBroker
from plantwatch.app.exit_codes import EXIT_OK
from plantwatch.config.plant import Plant, load_plant_config
from plantwatch.contract.bus import bus_subscription
from plantwatch.core.redact import redact_url
from plantwatch.infra.influx.buffer import DurableBuffer
from plantwatch.simulator.server import servers_for_plant

SAMPLE = Path(__file__).resolve().parent.parent / "collector" / "modbus" / "sample.plant.yaml"
RECIPIENTS = [  # where the demo's mail goes: the outbox, or the SMTP server given
    {"name": "省生态环境厅 值班（演示）", "email": "duty@eco.example", "lang": "zh", "role": "regulator"},
    {
        "name": "Plant energy manager (demo)",
        "email": "energy@demo-works.example",
        "lang": "en",
        "role": "plant",
    },
]


@dataclass
class DemoOptions:
    """What `plantwatch demo` was asked for."""

    data_dir: Path
    seed: int = 0
    speed: float = 600.0
    duration: float | None = None  # None: until Ctrl-C
    refresh: float = 2.0
    influx_url: str | None = None
    influx_database: str = "plant"
    mqtt_url: str | None = None  # None: an embedded broker on a free loopback port
    smtp: str | None = None  # host:port, no TLS (a local mail catcher)


MIN_INTERVAL = 0.05  # seconds: the fastest the demo polls a device


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_config(options: DemoOptions) -> dict[str, Any]:
    """The sample plant on free loopback ports, with the demo's outputs and recipients."""
    config: dict[str, Any] = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    ports: dict[int, int] = {}
    for device in config["devices"]:
        url = urlsplit(device["url"])
        assert url.port is not None
        ports.setdefault(url.port, _free_port())
        device["url"] = f"tcp://127.0.0.1:{ports[url.port]}"
        if device["map"] == "dust_cems":
            # Two samples every simulated minute (HJ 75 needs 45 valid minutes in an hour, so a
            # poll skipped on a busy machine costs nothing); its clock runs at the simulation's speed.
            interval = max(MIN_INTERVAL, 30.0 / options.speed)
            device["interval"] = f"{interval * 1000:.0f}ms"
            device.pop("timeout", None)
    config["buffer"] = {"path": "plantwatch-buffer.sqlite"}
    if options.influx_url:
        config["influx"] = {"url": options.influx_url, "api": "v1", "database": options.influx_database}
    config["mqtt"] = {
        "url": options.mqtt_url or f"mqtt://127.0.0.1:{_free_port()}",
        "client_id": f"plantwatch-demo-{os.getpid()}",
    }
    if not options.mqtt_url:
        config["mqtt"]["protocol_version"] = PROTOCOL_VERSION  # the embedded broker's
    # The simulated CEMS clock runs at the simulation's speed, far ahead of this machine's.
    config["event_time"] = {"max_skew": "3650d"}
    alerts = config.setdefault("alerts", {})
    alerts.setdefault("recipients", RECIPIENTS)
    if options.smtp:
        host, _, port = options.smtp.rpartition(":")
        alerts["smtp"] = {
            "host": host,
            "port": int(port),
            "security": "none",
            "from": "plantwatch-demo@localhost",
        }
    return config


def write_demo_plant(options: DemoOptions) -> Plant:
    """`<data dir>/plant.yaml`, so the demo's buffer, state and outbox live beside it."""
    options.data_dir.mkdir(parents=True, exist_ok=True)
    path = options.data_dir / "plant.yaml"
    header = "# Written by `plantwatch demo` from the sample plant; rewritten at every demo start.\n"
    path.write_text(header + yaml.safe_dump(demo_config(options), allow_unicode=True, sort_keys=False))
    return load_plant_config(path)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"  # 1.19 kg/t, 7,800.0 kWh/t


def view_table(plant: Plant, alerts: AlertService) -> list[str]:
    """One line per device and rule: the latest KPI, the target and the alert state."""
    lines = [
        f"{'device':<11} {'sector':<11} {'rule':<37} {'kind':<8} {'value':>10} {'target':>12}  state"
        "  (dust: valid minutes)"
    ]
    sectors = {d.id: getattr(plant.maps.get(d.id), "sector", "") for d in plant.config.devices}
    for (device, rule), kpi in sorted(alerts.latest.items()):
        alert = alerts.alerts.get((device, rule))
        state = alert.state if alert else "normal"
        found = alerts.rules.get((device, rule))
        comparator = found.target.comparator if found and found.target else ""
        limit = f"{comparator} {_number(found.limit if found else None)}"
        minutes = ""
        if found and found.target and found.target.kpi == "dust_hourly" and kpi.numerator is not None:
            minutes = f"  ({kpi.numerator:.0f}/{15 if rule.endswith(':early') else 60})"
        sector = sectors.get(device) or (found.target.sector if found and found.target else "")
        lines.append(
            f"{device:<11} {sector:<11} {rule:<37} {kpi.kind:<8} {_number(kpi.value):>10} "
            f"{limit:>12}  {state.upper() if state == 'firing' else state}{minutes}"
        )
    return lines


async def live_view(
    plant: Plant, alerts: AlertService | None, stop: asyncio.Event, refresh: float, out: TextIO
) -> None:
    """Redraw the table every `refresh` seconds (in place on a terminal; appended otherwise)."""
    tty = out.isatty()
    started = time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(refresh)
        if alerts is None:
            continue
        firing = sum(a.state == "firing" for a in alerts.alerts.values())
        header = (
            f"plantwatch demo  {time.monotonic() - started:5.0f}s  {firing} alert(s) firing  (Ctrl-C stops)"
        )
        recent = [
            f"  {t.event:<8} {t.alert.device} {t.rule.id} {_number(t.alert.value)}"
            for t in alerts.transitions[-5:]
        ]
        text = "\n".join([header, *view_table(plant, alerts), "latest transitions:", *recent])
        out.write(("\x1b[H\x1b[2J" if tty else "\n") + text + "\n")
        out.flush()


async def run_demo(options: DemoOptions, out: TextIO = sys.stdout) -> dict[str, Any]:
    """Run until the duration ends or Ctrl-C; return a summary."""
    plant = write_demo_plant(options)
    stop = asyncio.Event()
    async with AsyncExitStack() as stack:
        servers = [
            await stack.enter_async_context(s)
            for s in servers_for_plant(plant, seed=options.seed, speed=options.speed)
        ]
        out.write(
            f"simulator: {sum(len(s.devices) for s in servers)} device(s), speed x{options.speed:g}; "
            f"data in {options.data_dir}\n"
        )
        mqtt = plant.config.mqtt
        assert mqtt is not None
        broker = "broker"
        if not options.mqtt_url:
            url = urlsplit(mqtt.url)
            assert url.hostname is not None and url.port is not None
            await stack.enter_async_context(EmbeddedBroker(url.hostname, url.port))
            broker = f"embedded broker (amqtt, MQTT {PROTOCOL_VERSION})"
        bus = bus_subscription(plant.config.plant.id)
        out.write(f"mqtt: {broker} at {redact_url(mqtt.url)}; readings bus on {bus}\n")
        out.flush()
        if options.duration is not None:
            asyncio.get_running_loop().call_later(options.duration, stop.set)

        async def view(alerts: AlertService | None, stop: asyncio.Event) -> None:
            await live_view(plant, alerts, stop, options.refresh, out)

        left = await collect(
            plant,
            plant.config.influx,
            health_interval=3600,
            with_alerts=True,
            stop=stop,
            view=view,
        )
    outbox = options.data_dir / plant.config.alerts.outbox
    return {
        "lines_in_buffer": left,
        "mails_in_outbox": len(list((outbox / "pending").glob("*.eml"))),
        "mails_sent": len(list((outbox / "sent").glob("*.eml"))),
        "outbox": str(outbox),
    }


def sectors_in_buffer(path: Path) -> Counter[str]:
    """Lines per `sector` tag in a demo's durable buffer (for the summary and the tests)."""
    buffer = DurableBuffer(path)
    try:
        batch = buffer.read(10**9)
    finally:
        buffer.close()
    counts: Counter[str] = Counter()
    for line in batch.lines if batch else []:
        for part in line.split(" ", 1)[0].split(","):
            if part.startswith("sector="):
                counts[part[len("sector=") :]] += 1
    return counts


def command(args: argparse.Namespace) -> int:
    """Every sector simulated, collected and alerted on in one process, with a live view."""
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
