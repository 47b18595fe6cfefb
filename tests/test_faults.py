"""The fault suite (`pytest -m fault`): each fault of issue #15, made real against real services,
and what plantwatch must do about it. The numbers in the test names are the issue's items.

Notifications (1-4): a `kill -9` at each step of an alert's notification path; an undeliverable
mail or annotation that blocks nothing; a missing secret that stops the start, not the loop; a
crashing task restarted. Ingest (5-14): poison messages, a full disk, a second process on a
buffer, Retry-After, unbounded topics, a deleted buffer, impossible timestamps, log floods,
credentials in URLs, malformed Modbus answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sqlite3
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from plantwatch.alerts.health import AlertsHealth
from plantwatch.alerts.setup import build_alert_service
from plantwatch.alerts.state import QueueCounts
from plantwatch.collector.modbus.transport import ModbusBus, ReadError
from plantwatch.collector.mqtt.payloads import JsonDecoder
from plantwatch.collector.mqtt.subscriber import OTHER, MqttSubscriber
from plantwatch.config.plant import InfluxConfig, load_plant_config, parse_endpoint
from plantwatch.contract.bus import bus_payload, bus_topic
from plantwatch.core.reading import PollResult
from plantwatch.core.tasks import supervised
from plantwatch.infra.influx.buffer import RESERVE_BYTES, BufferInUseError, DurableBuffer
from plantwatch.infra.influx.forwarder import Forwarder
from plantwatch.infra.influx.writers import make_writer
from tests.alert_helpers import HOUR_NS, T0, result
from tests.conftest import GRAFANA_TOKEN
from tests.mqtt_helpers import SUBSCRIBED, MqttTestClient, mqtt_plant
from tests.services.grafana_api import GrafanaApi
from tests.services.influx_proxy import InfluxProxy
from tests.services.influxdb import InfluxDBServer
from tests.services.mosquitto import MosquittoServer
from tests.services.processes import free_port, log_count, start_plantwatch, stop, wait_for_log
from tests.services.smtp import SmtpServer
from tests.waiting import wait_until, wait_until_async

pytestmark = pytest.mark.fault

SMTP_ENV = {"PW_SMTP_USER": "plantwatch", "PW_SMTP_PASSWORD": "mail-s3cret"}


def alerts_plant(folder: Path, smtp: SmtpServer, extra: str = "") -> Path:
    config = folder / "plant.yaml"
    config.write_text(
        f"""plant: {{id: works, name: Works}}
devices:
  - {{id: saf-1, map: saf_ferrosilicon, url: "tcp://127.0.0.1:1"}}
alerts:
  smtp: {{host: 127.0.0.1, port: {smtp.port}, security: starttls, ca_file: {smtp.certs["ca"]},
         username_env: PW_SMTP_USER, password_env: PW_SMTP_PASSWORD, from: alerts@works.example}}
  recipients: [{{name: Duty, email: duty@eco.example, lang: en, role: plant}}]
{extra}""",
        encoding="utf-8",
    )
    return config


def taps(*rows: tuple[int, float, int, float]) -> list[PollResult]:
    """(hour, energy counter, tap counter, tap weight) as results of saf-1."""
    return [
        result("saf-1", T0 + hour * HOUR_NS, active_energy=energy, tap_counter=count, tap_weight=weight)
        for hour, energy, count, weight in rows
    ]


BREACH = taps((0, 0, 1, 8), (1, 1000, 2, 8), (3, 70000, 3, 8))  # the third: 69,000 kWh / 8 t


# --- 1 and 4: a kill -9 at each step of the notification path ---------------------------------


@pytest.mark.parametrize(
    ("point", "copies"),
    [
        ("notify.before_commit", 1),  # nothing committed: the bus message comes again, detected again
        ("notify.after_commit", 1),  # logged, not sent: sent after the restart
        ("notify.after_send", 2),  # SMTP took it, not marked sent: sent again, the same Message-ID
        ("notify.after_mark", 1),  # sent and marked: never again
    ],
)
def test_1_4_a_kill_at_any_step_of_the_notification_path_loses_no_mail(
    point: str, copies: int, tmp_path: Path, broker: MosquittoServer, smtp: SmtpServer
) -> None:
    config = alerts_plant(tmp_path, smtp)
    config.write_text(
        config.read_text()
        + f'mqtt: {{url: "{broker.url}", client_id: kill-test, protocol_version: "3.1.1"}}\n'
    )
    env = {**os.environ, **SMTP_ENV}
    log1 = tmp_path / "1.log"
    dying = subprocess.Popen(
        [sys.executable, "-m", "plantwatch", "alerts", "--config", str(config)],
        stdout=log1.open("ab"),
        stderr=subprocess.STDOUT,
        env={**env, "PLANTWATCH_FAILPOINT": point},
    )
    try:
        wait_for_log(log1, SUBSCRIBED)
        bus = MqttTestClient(broker, "collector-stand-in")
        for tap in BREACH:
            bus.publish(bus_topic("works", "saf-1"), bus_payload("works", "saf-1", [tap]))
        bus.close()
        assert dying.wait(30) == -9, log1.read_text()  # killed itself at the armed point
    finally:
        if dying.poll() is None:
            dying.kill()
    restarted = subprocess.Popen(
        [sys.executable, "-m", "plantwatch", "alerts", "--config", str(config)],
        stdout=(tmp_path / "2.log").open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        wait_until(lambda: len(smtp.inbox.messages) >= copies, 30, f"{copies} mail(s)")
        wait_for_log(tmp_path / "2.log", SUBSCRIBED)
        wait_until(lambda: list((tmp_path / "plantwatch-outbox" / "sent").glob("*.eml")), 10, "marked sent")
    finally:
        assert stop(restarted) == 0
    subjects = [str(m["Subject"]).strip() for m in smtp.inbox.messages]
    firing = "[FIRING] works saf-1: ferrosilicon unit power consumption 8,625 kWh/t (target ≤ 7,800 kWh/t)"
    assert subjects == [firing] * copies
    assert len({m["Message-ID"] for m in smtp.inbox.messages}) == 1  # a resend is the same mail
    assert not list((tmp_path / "plantwatch-outbox" / "pending").glob("*.eml"))


def test_1_a_message_that_cannot_be_rendered_costs_only_itself(
    tmp_path: Path,
    smtp: SmtpServer,
    grafana: GrafanaApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An overridden indicator with a Unicode line break once made the enqueue raise after the
    state was saved; now text is flattened, and a notifier whose rendering fails (a bug) gets a
    dead letter saying why while the state and the other notifiers go on."""
    for key, value in {**SMTP_ENV, "PW_GRAFANA_TOKEN": GRAFANA_TOKEN}.items():
        monkeypatch.setenv(key, value)
    config = alerts_plant(
        tmp_path,
        smtp,
        f'  grafana: {{url: "{grafana.url}", token_env: PW_GRAFANA_TOKEN}}\n'
        "  targets:\n    ferroalloy-fesi-unit-power:\n"
        '      indicator: {zh: "电耗", en: "power\\u2028Bcc: x@evil.example"}\n',
    )

    def broken(notifier: object, transition: object) -> list[object]:
        raise RuntimeError("a bug in the Grafana notifier")

    from plantwatch.alerts.notifiers.grafana import GrafanaNotifier

    monkeypatch.setattr(GrafanaNotifier, "render", broken)
    service = build_alert_service(load_plant_config(config))
    for tap in BREACH:
        service.handle(tap)
    assert [t.event for t in service.transitions] == ["firing"]
    assert service.alerts[("saf-1", "ferroalloy-fesi-unit-power")].state == "firing"
    assert asyncio.run(service.deliver())
    [mail] = smtp.inbox.messages
    assert mail["Bcc"] is None and "power Bcc: x@evil.example" in str(mail["Subject"])
    assert "\u2028" not in str(mail["Subject"])
    [dead] = service.store.notifications(state="dead")
    assert dead.notifier == "grafana" and (dead.error or "").startswith("not rendered: RuntimeError")
    service.close()


# --- 2: one undeliverable item blocks nothing ------------------------------------------------


def test_2_a_recipient_that_must_wait_holds_back_only_its_own_queue(
    tmp_path: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in SMTP_ENV.items():
        monkeypatch.setenv(key, value)
    config = alerts_plant(tmp_path, smtp)
    config.write_text(
        config.read_text().replace(
            "recipients: [{name: Duty, email: duty@eco.example, lang: en, role: plant}]",
            "recipients: [{name: Full, email: full@eco.example, lang: en, role: plant}, "
            "{name: Duty, email: duty@eco.example, lang: en, role: plant}]",
        )
    )
    smtp.inbox.deferred.add("full@eco.example")  # 451: a full mailbox, worth trying again later
    now = [T0 + 10 * HOUR_NS]
    service = build_alert_service(load_plant_config(config), clock=lambda: now[0])
    for tap in [*BREACH, *taps((5, 130000, 4, 8), (7, 200000, 5, 8))]:  # fires, resolves, fires
        service.handle(tap)
    assert not asyncio.run(service.deliver())  # something waits for a retry ...
    assert smtp.inbox.envelopes == [("alerts@works.example", ["duty@eco.example"])] * 3  # ... not Duty
    assert service.store.notification_counts()["email"] == QueueCounts(
        pending=3, sent=3, oldest_pending_ns=now[0]
    )
    smtp.inbox.deferred.clear()
    now[0] += 10 * 60 * 10**9  # past the longest backoff
    assert asyncio.run(service.deliver())
    assert [to for _, [to] in smtp.inbox.envelopes].count("full@eco.example") == 3
    service.close()


def test_2_a_retry_after_from_grafana_is_held_within_bounds(
    tmp_path: Path, smtp: SmtpServer, grafana: GrafanaApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {**SMTP_ENV, "PW_GRAFANA_TOKEN": GRAFANA_TOKEN}.items():
        monkeypatch.setenv(key, value)
    config = alerts_plant(
        tmp_path, smtp, f'  grafana: {{url: "{grafana.url}", token_env: PW_GRAFANA_TOKEN}}\n'
    )
    now = [T0 + 10 * HOUR_NS]
    service = build_alert_service(load_plant_config(config), clock=lambda: now[0])
    for retry_after, wait_s in (("0", 5), ("864000", 300)):  # no hot loop; no day-long stall
        grafana.reject, grafana.retry_after = [429], retry_after
        before = len(grafana.requests)
        if not service.transitions:
            for tap in BREACH:
                service.handle(tap)
        assert not asyncio.run(service.deliver())
        assert len(grafana.requests) == before + 1
        [waiting] = service.store.notifications(state="pending", notifier="grafana")
        assert service.store.next_attempt_ns() == now[0] + wait_s * 10**9, waiting
        now[0] += wait_s * 10**9
    assert asyncio.run(service.deliver())  # the server took it
    assert len(grafana.annotations) == 1
    service.close()


def test_2_an_undeliverable_mail_or_call_is_dead_lettered_and_blocks_nothing(
    tmp_path: Path,
    smtp: SmtpServer,
    grafana: GrafanaApi,
    plant_influx: InfluxDBServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in {**SMTP_ENV, "PW_GRAFANA_TOKEN": GRAFANA_TOKEN}.items():
        monkeypatch.setenv(key, value)
    config = alerts_plant(
        tmp_path,
        smtp,
        f'  grafana: {{url: "{grafana.url}", token_env: PW_GRAFANA_TOKEN}}\n',
    )
    config.write_text(
        config.read_text().replace(
            "recipients: [{name: Duty, email: duty@eco.example, lang: en, role: plant}]",
            "recipients: [{name: Gone, email: gone@eco.example, lang: en, role: plant}, "
            "{name: Duty, email: duty@eco.example, lang: en, role: plant}]",
        )
    )
    smtp.inbox.refused.add("gone@eco.example")  # 550: this mailbox will never exist
    grafana.reject = [400]  # the first annotation call is refused for good
    points: list[str] = []
    service = build_alert_service(load_plant_config(config), write_lines=points.extend)
    # fires, resolves at 7,500 kWh/t, fires again at 8,750 kWh/t
    for tap in [*BREACH, *taps((5, 130000, 4, 8), (7, 200000, 5, 8))]:
        service.handle(tap)
    assert [t.event for t in service.transitions] == ["firing", "resolved", "firing"]
    assert asyncio.run(service.deliver())  # nothing left to retry: delivered or dead
    assert smtp.inbox.envelopes == [("alerts@works.example", ["duty@eco.example"])] * 3
    counts = service.store.notification_counts()
    assert counts == {"email": QueueCounts(sent=3, dead=3), "grafana": QueueCounts(sent=2, dead=1)}
    points.clear()
    text = AlertsHealth(service).report()  # dead letters counted in health and in InfluxDB
    assert "notifications: email 3 sent, 0 pending, 3 dead; grafana 2 sent, 0 pending, 1 dead" in text
    assert plant_influx.write("\n".join(points), "plant") == 204
    queues = plant_influx.query(
        'SELECT "dead", "sent", "pending" FROM "plantwatch_notifications" GROUP BY "notifier"', "plant"
    )
    assert {(s["tags"]["notifier"], *s["values"][-1][1:]) for s in queues} == {
        ("email", 3, 3, 0),
        ("grafana", 1, 2, 0),
    }
    [health] = plant_influx.query('SELECT "notifications_dead", "firing" FROM "plantwatch_alerts"', "plant")
    assert health["values"][-1][1:] == [4, 1]
    dead = sorted((tmp_path / "plantwatch-outbox" / "dead").glob("*.eml"))
    assert len(dead) == 3
    letter = BytesParser(policy=policy.SMTP).parsebytes(dead[0].read_bytes())
    assert "550" in str(letter["X-Plantwatch-Dead-Letter"])
    assert str(letter["To"]).endswith("gone@eco.example>")
    [annotation] = grafana.annotations.values()  # the second episode's region, behind the refused one
    assert annotation["time"] == (T0 + 5 * HOUR_NS) // 10**6
    service.close()


# --- 3: a missing secret stops the start; a crashing task is restarted -----------------------


def test_3_a_missing_secret_stops_the_start_and_validate_names_it(
    tmp_path: Path, smtp: SmtpServer, influxdb: InfluxDBServer, influx_db: str
) -> None:
    config = alerts_plant(tmp_path, smtp)
    config.write_text(
        config.read_text()
        + f'influx: {{url: "{influxdb.url}", api: v1, database: {influx_db}}}\nbuffer: {{path: b.sqlite}}\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PW_SMTP")}
    env["PW_SMTP_USER"] = "plantwatch"  # the password is missing
    run = subprocess.run(
        [sys.executable, "-m", "plantwatch", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=20,  # a service that started anyway would run until this kills it
    )
    assert run.returncode == 1
    assert "environment variable PW_SMTP_PASSWORD (named by the config) is not set" in run.stderr
    assert "Traceback" not in run.stderr
    validate = subprocess.run(
        [sys.executable, "-m", "plantwatch", "validate", str(config)], capture_output=True, text=True, env=env
    )
    assert validate.returncode == 1
    assert f"{config}: alerts.smtp.password_env: environment variable PW_SMTP_PASSWORD" in validate.stdout
    secret_file = tmp_path / "smtp-password"  # a Docker or Kubernetes secret instead
    secret_file.write_text("mail-s3cret\n")
    env["PW_SMTP_PASSWORD_FILE"] = str(secret_file)
    assert (
        subprocess.run(
            [sys.executable, "-m", "plantwatch", "validate", str(config)], capture_output=True, env=env
        ).returncode
        == 0
    )


def test_3_a_crashing_task_is_logged_restarted_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []
    restarts: Counter[str] = Counter()

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("a bug")

    async def scenario() -> None:
        await supervised("flaky", flaky, asyncio.Event(), restarts, delay=(0.01, 0.02))

    with caplog.at_level(logging.ERROR, logger="plantwatch"):
        asyncio.run(asyncio.wait_for(scenario(), 10))
    assert len(runs) == 3 and restarts == Counter({"flaky": 2})
    crashes = [r for r in caplog.records if "task flaky crashed" in r.getMessage()]
    assert len(crashes) == 2 and crashes[0].exc_info is not None  # with the traceback


def test_3_a_missing_grafana_token_stops_the_start_too(tmp_path: Path, smtp: SmtpServer) -> None:
    config = alerts_plant(tmp_path, smtp, '  grafana: {url: "http://127.0.0.1:1", token_env: PW_NO_TOKEN}\n')
    config.write_text(config.read_text() + 'mqtt: {url: "mqtt://127.0.0.1:1"}\n')
    env = {**{k: v for k, v in os.environ.items() if k != "PW_NO_TOKEN"}, **SMTP_ENV}
    run = subprocess.run(
        [sys.executable, "-m", "plantwatch", "alerts", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=20,
    )
    assert (
        run.returncode == 1
        and "environment variable PW_NO_TOKEN (named by the config) is not set" in run.stderr
    )
    validate = subprocess.run(
        [sys.executable, "-m", "plantwatch", "validate", str(config)], capture_output=True, text=True, env=env
    )
    assert f"{config}: alerts.grafana.token_env: environment variable PW_NO_TOKEN" in validate.stdout


def test_3_crashing_loops_of_running_services_are_restarted_and_reported(
    tmp_path: Path, plant_influx: InfluxDBServer, broker: MosquittoServer, smtp: SmtpServer
) -> None:
    """The loops as the services wire them: the collector's health task, the alert loop."""
    config = tmp_path / "plant.yaml"
    config.write_text(
        f'plant: {{id: w, name: W}}\ninflux: {{url: "{plant_influx.url}", api: v1, database: plant}}\n'
        "buffer: {path: b.sqlite}\n"
    )
    env = {**os.environ, "PLANTWATCH_FAILPOINT": "health.report:raise"}
    log = tmp_path / "collect.log"
    collect = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "plantwatch",
            "collect",
            "--config",
            str(config),
            "--health-interval",
            "200ms",
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        wait_for_log(log, "tasks restarted: health 1x")  # crashed once, restarted, and says so
    finally:
        assert stop(collect) == 0
    text = log.read_text()
    assert text.count("task health crashed") == 1 and "FailpointError: failpoint health.report" in text

    alerts = alerts_plant(tmp_path, smtp)
    alerts.write_text(alerts.read_text() + f'mqtt: {{url: "{broker.url}", client_id: crash-test}}\n')
    log = tmp_path / "alerts.log"
    service = subprocess.Popen(
        [sys.executable, "-m", "plantwatch", "alerts", "--config", str(alerts), "--health-interval", "200ms"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **SMTP_ENV, "PLANTWATCH_FAILPOINT": "alerts.tick:raise"},
    )
    try:
        wait_for_log(log, SUBSCRIBED)
        wait_for_log(log, "task alerts crashed")
        bus = MqttTestClient(broker, "collector-stand-in")
        for tap in BREACH:
            bus.publish(bus_topic("works", "saf-1"), bus_payload("works", "saf-1", [tap]))
        bus.close()
        wait_until(lambda: smtp.inbox.messages, 30, "the breach mail from the restarted alert loop")
        wait_for_log(log, "tasks restarted: alerts 1x")
    finally:
        assert stop(service) == 0


# --- 5: poison messages --------------------------------------------------------------------


def test_5_poison_mqtt_messages_are_acknowledged_and_stop_nothing(
    tmp_path: Path, broker: MosquittoServer, plant_influx: InfluxDBServer
) -> None:
    config = mqtt_plant(tmp_path, broker.url, plant_influx.url)
    collect = start_plantwatch(
        "collect", "--config", str(config), "--health-interval", "1s", log=tmp_path / "c.log"
    )
    try:
        wait_for_log(tmp_path / "c.log", SUBSCRIBED)
        device = MqttTestClient(broker, "cems-logger")
        topic = "plants/works/north/cems/stack-1/data"
        for n in range(15):  # more than the broker's in-flight window (20 by default) in all
            device.publish(topic, b"[" * (100_000 + n))  # RecursionError in the JSON decoder
        for n in range(15):
            big = int("9" * 400) + n
            device.publish(topic, json.dumps({"ts": 1_764_000_000_000, "values": {"dust": big}, "seq": n}))
        for seq in range(5):
            good = {"ts": 1_764_000_000_001 + seq, "values": {"dust": 30}, "seq": seq, "flag": "N"}
            device.publish(topic, json.dumps(good))
        device.close()
        wait_until(lambda: len(dust_points(plant_influx)) >= 5, 30, "the good messages after the poison")
    finally:
        assert stop(collect) == 0
    reasons = [
        json.loads(line)["reason"]
        for line in (tmp_path / "plantwatch-mqtt-rejects.jsonl").read_text().splitlines()
    ]
    assert reasons == ["bad json"] * 5 + ["bad field"] * 5  # the first 5 of each kept as samples
    counts = plant_influx.query(
        'SELECT last("count") FROM "plantwatch_mqtt_rejects" GROUP BY "reason"', "plant"
    )  # the 400-digit number costs only its field
    assert {s["tags"]["reason"]: s["values"][0][1] for s in counts} == {"bad json": 15, "bad field": 15}
    collect = start_plantwatch(
        "collect", "--config", str(config), "--health-interval", "1s", log=tmp_path / "c2.log"
    )
    try:
        wait_for_log(tmp_path / "c2.log", SUBSCRIBED)
        wait_for_log(tmp_path / "c2.log", "health:")  # a health report: the session was resumed
    finally:
        assert stop(collect) == 0
    assert (
        len((tmp_path / "plantwatch-mqtt-rejects.jsonl").read_text().splitlines()) == 10
    )  # nothing redelivered


def test_5_whatever_a_message_does_to_the_decoder_rejects_only_that_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decoder bug nobody foresaw (here a KeyError) costs one message: acknowledged, counted."""
    from paho.mqtt.client import MQTTMessage

    plant = load_plant_config(mqtt_plant(tmp_path, "mqtt://127.0.0.1:1", "http://127.0.0.1:1"))
    accepted: list[PollResult] = []
    subscriber = MqttSubscriber(
        plant, lambda r, ack: accepted.append(r), max_payload=10**6, samples_file=tmp_path / "rejects.jsonl"
    )
    acked: list[int] = []

    class Link:
        def ack(self, mid: int, qos: int) -> None:
            acked.append(mid)

    subscriber.connection = Link()
    decode = JsonDecoder.__call__
    calls = [0]

    def first_one_breaks(*args: object) -> object:
        calls[0] += 1
        if calls[0] == 1:
            raise KeyError("nobody foresaw this")
        return decode(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(JsonDecoder, "__call__", first_one_breaks)
    for mid in (1, 2):
        message = MQTTMessage(mid=mid, topic=b"plants/works/north/cems/stack-1/data")
        message.qos = 1
        message.payload = json.dumps({"ts": 1_764_000_000_000 + mid, "values": {"dust": 20.0}}).encode()
        subscriber.handle(message)
    assert acked[0] == 1 and len(accepted) == 1  # the broken one acknowledged; the next one taken
    assert subscriber.rejects.counts[("stack-1", "decode error")] == 1


def dust_points(influx: InfluxDBServer) -> list[list[object]]:
    series = influx.query("SELECT dust FROM cems WHERE device = 'stack-1'", "plant")
    return series[0]["values"] if series else []


def test_5_poison_on_the_readings_bus_is_skipped(
    tmp_path: Path, broker: MosquittoServer, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in SMTP_ENV.items():
        monkeypatch.setenv(key, value)
    config = alerts_plant(tmp_path, smtp)
    config.write_text(config.read_text() + f'mqtt: {{url: "{broker.url}", client_id: poison-bus}}\n')
    service = start_plantwatch(
        "alerts", "--config", str(config), "--health-interval", "1s", log=tmp_path / "a.log"
    )
    try:
        wait_for_log(tmp_path / "a.log", SUBSCRIBED)
        bus = MqttTestClient(broker, "collector-stand-in")
        bus.publish(bus_topic("works", "saf-1"), b'{"device": ' * 50_000)
        bus.publish(bus_topic("works", "saf-1"), json.dumps({"device": "saf-1", "ts": 10**400, "fields": {}}))
        for tap in BREACH:
            bus.publish(bus_topic("works", "saf-1"), bus_payload("works", "saf-1", [tap]))
        bus.close()
        wait_until(lambda: smtp.inbox.messages, 30, "the breach mail after the poison")
        wait_for_log(tmp_path / "a.log", "1 firing, 1 transition(s) this run; notifications: email 1 sent")
    finally:
        assert stop(service) == 0
    assert log_count(tmp_path / "a.log", "not a readings-bus message") == 1  # once per episode
    assert log_count(tmp_path / "a.log", "; unreadable bus messages 2") >= 1  # in the health report


# --- 6: a full disk ------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of the test's own: a disk that can be filled."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Write until the disk is full; the filler file."""
    filler = folder / "filler"
    with filler.open("wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(bytes(2**16))
            out.flush()
    return filler


def lines(count: int, start: int = 0) -> list[str]:
    return [f"disk,device=d{i % 7} value={i}i {1_764_000_000_000_000_000 + start + i}" for i in range(count)]


def test_6_a_full_disk_still_drains_refuses_new_lines_once_logged_and_recovers(
    small_disk: Path,
    influxdb: InfluxDBServer,
    influx_db: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from plantwatch.infra.influx import buffer as buffer_module

    buffer = DurableBuffer(small_disk / "buffer.sqlite")
    assert buffer.reserve.stat().st_size == RESERVE_BYTES
    kept = sum(buffer.append(lines(500, start=1000 * n)) for n in range(20))  # 10,000 lines
    filler = fill(small_disk)
    with caplog.at_level(logging.DEBUG, logger="plantwatch"):
        refused = [buffer.append(lines(500, start=10**6 + 1000 * n)) for n in range(50)]
        assert refused == [0] * 50 and buffer.disk_refused == 25_000
        writer = make_writer(InfluxConfig(url=influxdb.url, api="v1", database=influx_db))
        forwarder = Forwarder(buffer, writer, batch_size=1000, dead_letter=small_disk / "dead")
        assert asyncio.run(forwarder.flush(60))  # drains: deleting sent lines needs the reserve
    full = [r for r in caplog.records if "new readings are refused" in r.getMessage()]
    assert [r.levelname for r in full if r.levelname != "DEBUG"] == ["ERROR"]  # once, not 50 times
    (series,) = influxdb.query("SELECT count(value) FROM disk", influx_db)
    assert series["values"][0][1] == kept == 10_000
    assert not buffer.reserve.exists()  # spent on the deletes
    filler.unlink()  # room again
    monkeypatch.setattr(buffer_module, "RESERVE_CHECK_S", 0.0)  # checked at every append, not 10 s
    with caplog.at_level(logging.INFO, logger="plantwatch"):
        assert buffer.append(lines(10, start=5 * 10**6)) == 10
    assert any("room on the disk again" in r.getMessage() for r in caplog.records)
    assert buffer.reserve.stat().st_size == RESERVE_BYTES  # rebuilt for the next time
    buffer.close()


def test_6_health_keeps_reporting_on_a_full_disk(small_disk: Path) -> None:
    from plantwatch.collector.health import HealthReporter
    from plantwatch.collector.sink import IngestStats
    from plantwatch.infra.influx.forwarder import ForwarderStats

    buffer = DurableBuffer(small_disk / "buffer.sqlite")
    health = HealthReporter("works", ["d1"], buffer, IngestStats(), ForwarderStats(), interval=0.05)
    fill(small_disk)

    async def scenario() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(health.run(stop))
        await wait_until_async(lambda: buffer.disk_refused >= 3, 10, "three health reports refused")
        stop.set()
        await running  # never crashed: it reported every time

    asyncio.run(scenario())
    assert "refused" in health.report()
    buffer.close()


# --- 7: one process per buffer; counts that disagree never hang --------------------------------


def test_7_a_second_process_on_a_buffer_is_refused_by_name(
    tmp_path: Path, plant_influx: InfluxDBServer
) -> None:
    held = DurableBuffer(tmp_path / "buffer.sqlite")
    with pytest.raises(
        BufferInUseError, match=rf"in use by another plantwatch process \(pid {os.getpid()}\)"
    ):
        DurableBuffer(tmp_path / "buffer.sqlite")
    config = tmp_path / "plant.yaml"
    config.write_text(
        "plant: {id: w, name: W}\n"
        f'influx: {{url: "{plant_influx.url}", api: v1, database: plant}}\n'
        "buffer: {path: buffer.sqlite}\n",
        encoding="utf-8",
    )
    second = subprocess.run(
        [sys.executable, "-m", "plantwatch", "collect", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1 and "is in use by another plantwatch process" in second.stderr
    held.close()


def test_7_a_count_that_disagrees_with_the_rows_never_hangs_a_flush(tmp_path: Path) -> None:
    buffer = DurableBuffer(tmp_path / "buffer.sqlite")
    buffer.append(lines(3))
    with sqlite3.connect(tmp_path / "buffer.sqlite") as db:  # what two writers or a bug can leave
        db.execute("DELETE FROM chunks")
    writer = make_writer(InfluxConfig(url="http://127.0.0.1:1", api="v1", database="x"))
    forwarder = Forwarder(buffer, writer, dead_letter=tmp_path / "dead")
    started = time.monotonic()
    assert asyncio.run(asyncio.wait_for(forwarder.flush(5), 10))  # recounted: nothing left
    assert time.monotonic() - started < 5 and buffer.depth == 0
    buffer.close()


def test_7_a_newline_in_a_measurement_is_refused_by_validate(tmp_path: Path) -> None:
    bad = tmp_path / "m.yaml"
    bad.write_text(
        'model: m\ndescription: d\nsector: emissions\nprotocol: modbus\nmeasurement: "cems\\nx"\n'
        "registers: [{name: dust, address: 0, type: float32}]\n",
        encoding="utf-8",
    )
    from plantwatch.config.validate import validate_paths

    [problem] = validate_paths([bad])[1]
    assert problem.path == "measurement" and "should match pattern" in problem.message
    bad.write_text(
        'model: m\ndescription: d\nsector: emissions\nprotocol: mqtt\nmeasurement: "cems\\nx"\n'
        "format: json\ntopic: a/{device}\nfields: [{name: dust, path: dust}]\n",
        encoding="utf-8",
    )
    [problem] = validate_paths([bad])[1]  # an MQTT map the same
    assert problem.path == "measurement" and "should match pattern" in problem.message


# --- 8: Retry-After within bounds -----------------------------------------------------------


@pytest.mark.parametrize("retry_after", ["0", "864000"])
def test_8_retry_after_is_held_within_the_backoff_bounds(
    retry_after: str, tmp_path: Path, influxdb: InfluxDBServer, influx_db: str
) -> None:
    """`0` must not spin (thousands of requests a second); a day must not stall forwarding."""
    buffer = DurableBuffer(tmp_path / "b.sqlite")
    buffer.append(lines(10))
    with InfluxProxy(influxdb.url) as proxy:
        proxy.inject = [(503, {"Retry-After": retry_after}, "{}")] * 2
        writer = make_writer(InfluxConfig(url=proxy.url, api="v1", database=influx_db))
        forwarder = Forwarder(
            buffer,
            writer,
            dead_letter=tmp_path / "dead",
            backoff_min=0.5,
            backoff_max=1.0,
            flush_interval=0.01,
        )
        started = time.monotonic()
        assert asyncio.run(forwarder.flush(30))
        elapsed = time.monotonic() - started
    assert len(proxy.requests) == 3  # two refusals, then the write: no spin
    assert 1.0 <= elapsed < 5  # each wait between 0.5 and 1 s, whatever the server asked
    buffer.close()


# --- 9: bounded state ---------------------------------------------------------------------


def test_9_topic_levels_and_sparkplug_births_cannot_grow_memory_without_end(tmp_path: Path) -> None:
    from paho.mqtt.client import MQTTMessage

    config = mqtt_plant(tmp_path, "mqtt://127.0.0.1:1", "http://127.0.0.1:1", sparkplug=True)
    config.write_text(
        config.read_text().replace("client_id: pw-test", "client_id: pw-test, max_tag_values: 50")
    )
    plant = load_plant_config(config)
    accepted: list[PollResult] = []
    subscriber = MqttSubscriber(
        plant, lambda r, ack: accepted.append(r), max_payload=10**6, samples_file=tmp_path / "rejects.jsonl"
    )

    def message(topic: str, payload: bytes) -> MQTTMessage:
        m = MQTTMessage(topic=topic.encode())
        m.payload = payload
        return m

    for line in range(200):  # 200 distinct values of the {line} level
        document = json.dumps({"ts": 1_764_000_000_000 + line, "values": {"dust": 1.0}})
        subscriber.handle(message(f"plants/works/line-{line}/cems/stack-1/data", document.encode()))
    lines_seen = {r.tags["line"] for r in accepted}
    assert len(accepted) == 200 and len(lines_seen) == 51 and OTHER in lines_seen  # 50 + "_other"
    assert subscriber.rejects.counts[("stack-1", "too many tag values")] == 150

    from tests.test_sparkplug import DOUBLE, payload

    birth = [
        {"name": f"Noise/{n}", "alias": n + 10, "datatype": DOUBLE, "double_value": 1.0}
        for n in range(20_000)
    ]
    birth.append({"name": "Power/Active", "alias": 1, "datatype": DOUBLE, "double_value": 2.0})
    subscriber.handle(message("spBv1.0/works/NBIRTH/gw1", payload(0, [])))
    subscriber.handle(message("spBv1.0/works/DBIRTH/gw1/saf9", payload(1, birth)))
    tracker = subscriber._trackers["works"]
    assert tracker.nodes["gw1"].aliases["saf9"] == {1: "Power/Active"}  # only what the map uses
    strangers = [{"name": f"M/{n}", "alias": n, "datatype": DOUBLE, "double_value": 1.0} for n in range(1000)]
    subscriber.handle(message("spBv1.0/works/DBIRTH/gw1/unknown-dev", payload(2, strangers)))
    assert "unknown-dev" not in tracker.nodes["gw1"].aliases  # no configured device: nothing kept


def test_9_the_series_cache_drops_the_least_recently_used_and_counts_it() -> None:
    from plantwatch.core.lru import BoundedCache

    cache: BoundedCache[str, int] = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2 and cache.evictions == 1


# --- 10: the buffer file deleted while running --------------------------------------------------


def test_10_a_deleted_buffer_file_is_noticed_recreated_and_loses_nothing(
    tmp_path: Path, influxdb: InfluxDBServer, influx_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "buffer.sqlite"
    buffer = DurableBuffer(path)
    buffer.append(lines(300))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)  # an operator's `rm`, or a cleanup job
    with caplog.at_level(logging.ERROR, logger="plantwatch"):
        buffer.append(lines(200, start=1000))
    assert any("was deleted or replaced" in r.getMessage() for r in caplog.records)
    assert path.exists() and buffer.recreated == 1 and buffer.depth == 500
    writer = make_writer(InfluxConfig(url=influxdb.url, api="v1", database=influx_db))
    assert asyncio.run(Forwarder(buffer, writer, dead_letter=tmp_path / "dead").flush(30))
    (series,) = influxdb.query("SELECT count(value) FROM disk", influx_db)
    assert series["values"][0][1] == 500
    buffer.close()
    assert DurableBuffer(path).depth == 0  # the new file is the buffer from now on


def test_10_a_replaced_buffer_file_is_kept_aside_and_nothing_held_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    buffer = DurableBuffer(path)
    buffer.append(lines(50))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    stranger = sqlite3.connect(path)  # something else put a file of its own at the path
    stranger.execute("CREATE TABLE theirs (x)")
    stranger.commit()
    stranger.close()
    buffer.append(lines(5, start=1000))
    assert buffer.recreated == 1 and buffer.depth == 55
    [kept] = tmp_path.glob("buffer.sqlite.replaced-*")
    with sqlite3.connect(kept) as db:
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("theirs",)]
    buffer.close()


# --- 11: timestamps outside what InfluxDB stores ------------------------------------------------


def test_11_impossible_timestamps_cost_their_fields_not_the_batch(
    tmp_path: Path, broker: MosquittoServer, plant_influx: InfluxDBServer
) -> None:
    config = mqtt_plant(tmp_path, broker.url, plant_influx.url, sparkplug=True)
    collect = start_plantwatch("collect", "--config", str(config), log=tmp_path / "c.log")
    try:
        wait_for_log(tmp_path / "c.log", SUBSCRIBED)
        device = MqttTestClient(broker, "cems-logger")
        topic = "plants/works/north/cems/stack-1/data"
        device.publish(topic, json.dumps({"ts": 253_402_214_400_000, "values": {"dust": 11.0}}))  # year 9999
        device.publish(topic, json.dumps({"ts": -62_135_596_800_000, "values": {"dust": 12.0}}))  # year 0001
        device.publish(topic, json.dumps({"ts": 1_764_000_000_000, "values": {"dust": 13.0}}))
        from tests.test_sparkplug import DOUBLE, UINT64, payload

        metrics = [
            {"name": "Power/Active", "datatype": DOUBLE, "double_value": 30000.0, "timestamp": 2**64 - 1},
            {
                "name": "Energy/Active",
                "datatype": UINT64,
                "long_value": 12_345,
                "timestamp": 1_764_000_000_000,
            },
        ]
        device.publish("spBv1.0/works/NBIRTH/gw1", payload(0, []))
        device.publish("spBv1.0/works/DDATA/gw1/saf9", payload(1, metrics))
        device.close()
        wait_until(
            lambda: plant_influx.query("SELECT active_energy FROM saf", "plant"), 20, "the good metric"
        )
        wait_until(lambda: len(dust_points(plant_influx)) == 1, 20, "the good minute")
    finally:
        assert stop(collect) == 0
    assert [row[1] for row in dust_points(plant_influx)] == [13.0]
    quality = plant_influx.query('SELECT "field", reason FROM plantwatch_quality', "plant")
    refused = {row[1] for row in quality[0]["values"] if row[2].startswith("bad timestamp: ")}
    assert refused == {"dust", "seq", "data_flag", "active_power"}  # the good metric's time was good
    assert not (tmp_path / "plantwatch-dead-letter.jsonl").exists()  # InfluxDB refused nothing


# --- 12: logs that stay readable ------------------------------------------------------------


async def _long_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A Modbus TCP device answering every read with three registers too many."""
    while request := await reader.read(12):
        tid, _, _, unit, function, _, count = struct.unpack(">HHHBBHH", request)
        registers = b"".join(struct.pack(">H", r) for r in range(count + 3))
        pdu = struct.pack(">BB", function, len(registers)) + registers
        writer.write(struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu)
        await writer.drain()


async def _bad_byte_count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A Modbus TCP device whose answers announce more bytes than they carry (pymodbus cannot
    decode them)."""
    while request := await reader.read(12):
        tid, _, _, unit, function, _, count = struct.unpack(">HHHBBHH", request)
        registers = b"".join(struct.pack(">H", r) for r in range(count))
        pdu = struct.pack(">BB", function, 2 * count + 6) + registers
        writer.write(struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu)
        await writer.drain()


async def _unknown_function(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A device answering with a function code that does not exist."""
    while request := await reader.read(12):
        tid, _, _, unit, _, _, count = struct.unpack(">HHHBBHH", request)
        pdu = struct.pack(">BB", 0x55, 2 * count) + bytes(2 * count)
        writer.write(struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu)
        await writer.drain()


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A device that resets the connection at the first request."""
    await reader.read(12)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def test_12_bad_answers_of_four_devices_log_one_error_each(
    tmp_path: Path, plant_influx: InfluxDBServer
) -> None:
    async def serve_and_collect() -> str:
        server = await asyncio.start_server(_long_answers, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        undecodable = await asyncio.start_server(_bad_byte_count, "127.0.0.1", 0)
        other = undecodable.sockets[0].getsockname()[1]
        devices = "".join(
            f'  - {{id: d{n}, map: dust_cems, url: "tcp://127.0.0.1:{port}", unit: {n}, interval: 100ms}}\n'
            for n in (1, 2, 3)
        )
        devices += (
            f'  - {{id: d4, map: dust_cems, url: "tcp://127.0.0.1:{other}", unit: 4, interval: 100ms}}\n'
        )
        config = tmp_path / "plant.yaml"
        config.write_text(
            f"plant: {{id: w, name: W}}\ndevices:\n{devices}"
            f'influx: {{url: "{plant_influx.url}", api: v1, database: plant}}\nbuffer: {{path: b.sqlite}}\n'
        )
        log = tmp_path / "c.log"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "plantwatch", "collect", "--config", str(config), "--health-interval", "1s",
            stdout=log.open("ab"), stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        await wait_until_async(lambda: log_count(log, "health:") >= 3, 30, "three health reports")
        proc.terminate()
        await proc.wait()
        server.close()
        undecodable.close()
        return log.read_text()

    text = asyncio.run(serve_and_collect())
    errors = [line for line in text.splitlines() if " ERROR " in line]
    # one per device; skipped polls, counted and not logged: tests/test_scheduler.py (also `fault`)
    assert len(errors) == 4, errors
    assert sum("bad response length" in line for line in errors) == 3, errors
    assert sum("d4" in line and "bad response: undecodable answer" in line for line in errors) == 1
    assert "asyncio" not in text and "Traceback" not in text  # pymodbus's decode errors stay quiet


def test_12_a_batch_of_rejected_lines_is_one_error(
    tmp_path: Path, influxdb: InfluxDBServer, influx_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    buffer = DurableBuffer(tmp_path / "b.sqlite")
    buffer.append([*lines(5), *(f"disk value={i}x 1" for i in range(8))])  # 8 lines InfluxDB refuses
    writer = make_writer(InfluxConfig(url=influxdb.url, api="v1", database=influx_db))
    with caplog.at_level(logging.INFO, logger="plantwatch"):
        assert asyncio.run(Forwarder(buffer, writer, dead_letter=tmp_path / "dead.jsonl").flush(30))
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "rejected 8 line(s) of a batch" in errors[0].getMessage()
    assert len((tmp_path / "dead.jsonl").read_text().splitlines()) == 8
    buffer.close()


# --- 13: credentials in URLs -----------------------------------------------------------------


@pytest.mark.parametrize("api", ["v1 database: plant", "v2 bucket: plant/autogen"])
def test_13_credentials_in_the_influx_url_never_reach_the_log(api: str, tmp_path: Path) -> None:
    refused = free_port()
    version, target = api.split(" ", 1)
    config = tmp_path / "plant.yaml"
    config.write_text(
        "plant: {id: w, name: W}\n"
        f'influx: {{url: "http://plantwatch:s3cret-pw@127.0.0.1:{refused}", api: {version}, {target},'
        " flush_interval: 100ms, shutdown_timeout: 1s}\nbuffer: {path: b.sqlite}\n"
    )
    collect = start_plantwatch(
        "collect", "--config", str(config), "--health-interval", "1s", log=tmp_path / "c.log"
    )
    try:
        wait_for_log(tmp_path / "c.log", "cannot reach InfluxDB")
    finally:
        assert stop(collect) == 0
    text = (tmp_path / "c.log").read_text()
    assert "s3cret-pw" not in text and f"plantwatch:***@127.0.0.1:{refused}" in text


def test_13_error_messages_that_quote_a_url_are_scrubbed() -> None:
    from plantwatch.core.redact import redact_url, scrub

    url = "https://ops:pa55word@influx.plant.local:8086/write?db=plant"
    shown = scrub(ConnectionError(f"HTTPSConnectionPool: Max retries exceeded with url: {url}"), url)
    assert "pa55word" not in shown and "ops:***@influx.plant.local:8086" in shown
    assert scrub("authentication failed for pa55word", url) == "authentication failed for ***"
    assert redact_url("http://tok3n@h:1/") == "http://***@h:1/"  # a token alone is masked whole


# --- 14: Modbus answers checked --------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "reason"),
    [
        (_long_answers, "bad response length: asked 4 register(s), got 7"),
        (_reset, "connection reset by tcp://"),
        (_bad_byte_count, "bad response: undecodable answer"),
        (_unknown_function, "bad response: undecodable answer"),
    ],
)
def test_14_a_long_answer_and_a_reset_are_named_for_what_they_are(device: object, reason: str) -> None:
    async def read() -> str:
        server = await asyncio.start_server(device, "127.0.0.1", 0)  # type: ignore[arg-type]
        bus = ModbusBus(parse_endpoint(f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}"), timeout=1.0)
        try:
            await bus.read(1, 3, 0, 4, 1.0)
        except ReadError as exc:
            return exc.reason
        finally:
            bus.close()
            server.close()
        return "accepted"

    assert asyncio.run(read()).startswith(reason)
