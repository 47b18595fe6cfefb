"""Alert latency benchmark: a breaching reading published to the collector → the email accepted by SMTP.

    python -m benchmarks.alert_latency               # 100 breaches, about a minute
    python -m benchmarks.alert_latency --breaches 20

A real Mosquitto, InfluxDB and SMTP server (aiosmtpd with STARTTLS and AUTH) on loopback.
`plantwatch run` (collector and alert service in one process) subscribes to a furnace that
publishes JSON over MQTT; the ferrosilicon target has `for: 0`. Each breach is a tap of
9,000 kWh/t published at t0; its latency ends when the SMTP server accepts the FIRING mail.
A tap of 7,000 kWh/t then resolves it before the next breach.

The baseline, measured in the same run on the same broker and SMTP server, is the least any
MQTT-to-mail path can do: a bare paho subscriber that sends one mail with smtplib (STARTTLS,
AUTH) as soon as the message arrives. Grafana alerting, for comparison, evaluates every 10 s
at best.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import smtplib
import ssl
import statistics
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks.report import save
from plantwatch.app.collect import collect
from plantwatch.config.plant import load_plant_config
from tests.services.influxdb import InfluxDBServer
from tests.services.mosquitto import MosquittoServer
from tests.services.smtp import Inbox, SmtpServer

TOPIC = "plants/works/saf-1/data"
USER, PASSWORD = "plantwatch", "bench-s3cret"

FURNACE_MAP = """model: saf_json
description: Furnace gateway publishing energy and taps as JSON
sector: ferroalloy
product: ferrosilicon
protocol: mqtt
measurement: saf
format: json
topic: plants/{plant}/{device}/data
fields:
  - {name: active_energy, path: energy, type: int, unit: kWh, role: energy_counter}
  - {name: tap_counter, path: taps, type: int, role: tap_counter}
  - {name: tap_weight, path: weight, unit: t, role: tap_weight}
"""


class TimedInbox(Inbox):
    """The test inbox, plus the wall time each message was accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted: list[tuple[float, str]] = []  # (time.time(), subject)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        self.accepted.append((time.time(), str(self.messages[-1]["Subject"]).strip()))
        return reply


def plant_file(folder: Path, broker: MosquittoServer, influx: InfluxDBServer, smtp: SmtpServer) -> Path:
    (folder / "saf_json.yaml").write_text(FURNACE_MAP, encoding="utf-8")
    config = folder / "plant.yaml"
    config.write_text(
        f"""plant: {{id: works, name: Works}}
devices:
  - {{id: saf-1, map: saf_json.yaml, interval: 1m}}
mqtt: {{url: "{broker.url}", client_id: bench-plantwatch}}
influx: {{url: "{influx.url}", api: v1, database: plant, flush_interval: 200ms}}
buffer: {{path: buffer.sqlite}}
alerts:
  targets: {{ferroalloy-fesi-unit-power: {{for: 0}}}}
  smtp: {{host: 127.0.0.1, port: {smtp.port}, security: starttls, ca_file: "{smtp.certs["ca"]}",
         username_env: PW_BENCH_SMTP_USER, password_env: PW_BENCH_SMTP_PASSWORD, from: alerts@works.example}}
  recipients: [{{name: Regulator, email: duty@eco.example, lang: en}}]
""",
        encoding="utf-8",
    )
    return config


def wait_for(inbox: TimedInbox, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(inbox.accepted) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(inbox.accepted)} of {count} mails after {timeout}s")
        time.sleep(0.001)


def drive_plantwatch(publisher: mqtt.Client, inbox: TimedInbox, breaches: int, out: list[float]) -> None:
    """Publish breach/recovery tap pairs; `out` gets each FIRING mail's latency (the first is warm-up)."""
    energy, taps = 1_000_000, 1

    def tap(kwh_per_t: float) -> float:
        nonlocal energy, taps
        energy, taps = energy + round(kwh_per_t), taps + 1
        t0 = time.time()
        body = {"energy": energy, "taps": taps, "weight": 1.0}
        publisher.publish(TOPIC, json.dumps(body), qos=1).wait_for_publish(10)
        return t0

    deadline = time.monotonic() + 60  # the first boundary: repeat until the collector is subscribed
    while not inbox.accepted:
        tap(7000)
        tap(9000)
        if time.monotonic() > deadline:
            raise TimeoutError("plantwatch never mailed the warm-up breach")
        time.sleep(0.5)
    wait_for(inbox, 1)
    tap(7000)
    wait_for(inbox, 2)
    for _ in range(breaches):
        sent = len(inbox.accepted)
        t0 = tap(9000)
        wait_for(inbox, sent + 1)
        accepted, subject = inbox.accepted[sent]
        assert subject.startswith("[FIRING]"), subject
        out.append(accepted - t0)
        tap(7000)
        wait_for(inbox, sent + 2)
    os.kill(os.getpid(), signal.SIGINT)


def measure_plantwatch(folder: Path, broker: MosquittoServer, smtp: SmtpServer, breaches: int) -> list[float]:
    """Latencies of `plantwatch run` over `breaches` breaches, in seconds."""
    influx = InfluxDBServer(folder / "influxdb")
    influx.start()
    influx.create_database("plant")
    try:
        plant = load_plant_config(plant_file(folder, broker, influx, smtp))
        assert plant.config.influx is not None
        publisher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-furnace")
        publisher.connect("127.0.0.1", broker.port)
        publisher.loop_start()
        latencies: list[float] = []
        errors: list[BaseException] = []

        def driver() -> None:
            try:
                drive_plantwatch(publisher, smtp.inbox, breaches, latencies)  # type: ignore[arg-type]
            except BaseException as exc:  # reported after the service stops
                errors.append(exc)
                os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=driver, daemon=True).start()
        asyncio.run(collect(plant, plant.config.influx, health_interval=3600, with_alerts=True))
        publisher.loop_stop()
        if errors:
            raise errors[0]
        return latencies
    finally:
        influx.stop()


def measure_bare(broker: MosquittoServer, smtp: SmtpServer, breaches: int) -> list[float]:
    """Latencies of a paho subscriber mailing with smtplib on each message: the floor."""
    context = ssl.create_default_context(cafile=str(smtp.certs["ca"]))
    inbox: TimedInbox = smtp.inbox  # type: ignore[assignment]
    sent_at: list[float] = []

    def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        mail = EmailMessage()
        mail["From"], mail["To"] = "bare@works.example", "duty@eco.example"
        mail["Subject"] = f"[FIRING] bare {message.payload.decode()}"
        mail.set_content("breach")
        with smtplib.SMTP("127.0.0.1", smtp.port, timeout=10) as client:
            client.starttls(context=context)
            client.login(USER, PASSWORD)
            client.send_message(mail)

    subscriber = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-bare")
    subscriber.on_message = on_message
    subscriber.connect("127.0.0.1", broker.port)
    subscriber.subscribe("bench/bare", qos=1)
    subscriber.loop_start()
    publisher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-bare-pub")
    publisher.connect("127.0.0.1", broker.port)
    publisher.loop_start()
    time.sleep(0.5)
    latencies = []
    for n in range(breaches + 1):  # the first is warm-up
        before = len(inbox.accepted)
        sent_at.append(time.time())
        publisher.publish("bench/bare", str(n), qos=1).wait_for_publish(10)
        wait_for(inbox, before + 1)
        if n:
            latencies.append(inbox.accepted[before][0] - sent_at[-1])
    for client in (publisher, subscriber):
        client.disconnect()
        client.loop_stop()
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(latencies: list[float]) -> dict[str, float]:
    ms = [1000 * v for v in latencies]
    return {
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--breaches", type=int, default=100)
    args = parser.parse_args()
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's per-login deprecation notice
    os.environ.update(PW_BENCH_SMTP_USER=USER, PW_BENCH_SMTP_PASSWORD=PASSWORD)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = MosquittoServer(folder / "mosquitto")
        smtp = SmtpServer(folder / "smtp", users={USER: PASSWORD}, starttls=True)
        smtp.inbox = TimedInbox()
        broker.start()
        smtp.start()
        try:
            print(f"bare paho + smtplib: {args.breaches} messages", flush=True)
            bare = measure_bare(broker, smtp, args.breaches)
            smtp.stop()
            smtp.inbox = TimedInbox()
            smtp.start()
            print(f"plantwatch run: {args.breaches} breaches with for: 0", flush=True)
            ours = measure_plantwatch(folder, broker, smtp, args.breaches)
        finally:
            smtp.stop()
            broker.stop()
    plantwatch, baseline = summary(ours), summary(bare)
    result: dict[str, object] = {
        "breaches": args.breaches,
        "plantwatch_run": plantwatch,
        "bare_paho_smtplib": baseline,
        "p99_ratio_to_bare": round(plantwatch["p99_ms"] / baseline["p99_ms"], 2),
        "p99_target_ms": 1000,
        "grafana_alerting_evaluation_interval_ms": 10_000,
        "python": sys.version.split()[0],
    }
    print(json.dumps(result, indent=2))
    save("alert_latency", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
