"""Event time end to end: every KPI and every dust hour computed at the time the data happened.

CEMS minute data carry their own timestamps (HJ 212: the start of the minute). Replayed fast,
arriving a minute late each, stamped with the minute's end, or split by a restart, they give the
same hourly averages and the same mails; a clock that jumps a day ahead is refused per field; a
meter that stops answering is `stale` within its intervals, and a restart does not churn it.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from plantwatch.alerts.kpi.watermark import EventTimeGate
from plantwatch.alerts.service import AlertService
from plantwatch.alerts.setup import build_alert_service
from plantwatch.collector.modbus.clock import ClockError, DeviceClock
from plantwatch.config.device_map import parse_device_map
from plantwatch.config.plant import Plant, load_plant_config
from plantwatch.core.reading import PollResult, Reading
from tests.alert_helpers import MINUTE_NS, plain_text, result
from tests.mqtt_helpers import SUBSCRIBED, MqttTestClient
from tests.services.influxdb import InfluxDBServer
from tests.services.mosquitto import MosquittoServer
from tests.services.processes import free_port, log_count, start_plantwatch, stop, wait_for_log
from tests.services.smtp import SmtpServer
from tests.waiting import wait_until

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOUR_NS = 60 * MINUTE_NS
TARGET = "ferroalloy-dust"

CEMS_MINUTES = """model: cems_minutes
description: CEMS data logger publishing HJ 212 minute data, stamped with the minute's start
sector: emissions
protocol: mqtt
measurement: cems
format: json
topic: plants/{plant}/cems/{device}/minute
timestamp: {path: DataTime, format: iso8601, marks: MARKS}
fields:
  - {name: dust, path: a34013, unit: mg/m3, role: dust_concentration}
  - {name: o2, path: a19001, unit: "%", role: o2}
  - {name: data_flag, path: flag, type: string, role: data_flag}
"""


def minutes(base_ns: int) -> list[tuple[int, float, str]]:
    """(minute start, raw dust, flag) for four hours from `base_ns`, with O2 at 13 % (corrected to
    11 %: x 10/8). Hour A: 48 normal minutes at 44 (55 corrected: a breach) and 12 in maintenance
    at 200 (excluded). Hour B: 44 normal minutes (too few: no valid average), 16 in calibration.
    Hour C: 60 normal minutes at 24 (30 corrected: recovered). Then 4 minutes of hour D, which move
    the watermark past the end of hour C plus the lateness."""
    data = [(m, 44.0 if m < 48 else 200.0, "N" if m < 48 else "M") for m in range(60)]
    data += [(m, 20.0, "N" if m < 104 else "C") for m in range(60, 120)]
    data += [(m, 24.0, "N") for m in range(120, 184)]
    return [(base_ns + m * MINUTE_NS, dust, flag) for m, dust, flag in data]


EXPECTED_HOURS = [(55.0, 48), (None, 44), (30.0, 60)]  # (valid hourly average, valid minutes)


def hour_start(hours_ago: int) -> int:
    """The start of a local hour, `hours_ago` before now."""
    now = datetime.now(SHANGHAI).replace(minute=0, second=0, microsecond=0)
    return int((now - timedelta(hours=hours_ago)).timestamp()) * 10**9


def iso(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, SHANGHAI).isoformat()


def plant_file(folder: Path, marks: str = "start", extra: str = "") -> Path:
    (folder / "cems_minutes.yaml").write_text(CEMS_MINUTES.replace("MARKS", marks), encoding="utf-8")
    config = folder / "plant.yaml"
    config.write_text(
        f"""plant: {{id: works, name: Works}}
devices:
  - {{id: stack-1, map: cems_minutes.yaml}}
alerts:
  o2_reference: {{stack-1: 11}}
  recipients: [{{name: Duty, email: duty@eco.example, lang: en, severities: [critical]}}]
  digest_at: null  # this test counts alert mails; the digest is tested in test_report_mail.py
{extra}""",
        encoding="utf-8",
    )
    return config


def cems_result(ts_ns: int, dust: float, flag: str) -> PollResult:
    return result("stack-1", ts_ns, dust=dust, o2=13.0, data_flag=flag)


class Clock:
    """The alert service's wall clock, moved by the test."""

    def __init__(self, now_ns: int) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns

    def run_until(self, service: AlertService, until_ns: int, step_ns: int = 5 * 10**9) -> None:
        """Let wall time pass, ticking the service as its run loop would."""
        while self.now_ns + step_ns <= until_ns:
            self.now_ns += step_ns
            service.tick()
        self.now_ns = max(self.now_ns, until_ns)


def closed_hours(lines: list[str]) -> list[tuple[float | None, float]]:
    """(value, valid minutes) of every closed dust hour among KPI lines, in order."""
    hours = []
    for line in lines:
        if line.startswith("plantwatch_kpi,") and "kind=closed" in line and f"target={TARGET}," in line:
            fields = dict(part.split("=", 1) for part in line.split(" ")[1].split(","))
            value = float(fields["value"]) if "value" in fields else None
            hours.append((value, float(fields["numerator"])))
    return hours


def transitions(service: AlertService) -> list[tuple[str, str, int]]:
    return [(t.event, t.rule.id, t.kpi.ts_ns if t.kpi else 0) for t in service.transitions]


def run_in_process(
    plant: Plant, arrivals: list[tuple[int, PollResult]], silent_for_ns: int = 10 * MINUTE_NS
) -> tuple[list[tuple[float | None, float]], list[tuple[str, str, int]], AlertService]:
    """Feed results at their arrival times (wall clock of the service), ticking in between, then
    let the device be silent for `silent_for_ns`."""
    lines: list[str] = []
    clock = Clock(arrivals[0][0])
    service = build_alert_service(plant, write_lines=lines.extend, clock=clock)
    for arrival_ns, reading in arrivals:
        clock.run_until(service, arrival_ns)
        service.handle(reading)
    clock.run_until(service, arrivals[-1][0] + silent_for_ns)
    return closed_hours(lines), transitions(service), service


def test_cems_minutes_replayed_give_exact_hours_and_exactly_the_expected_mails(
    tmp_path: Path,
    broker: MosquittoServer,
    influxdb: InfluxDBServer,
    influx_db: str,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Real Mosquitto, `plantwatch run`, InfluxDB and SMTP: five hours old minutes replayed in
    seconds, with a message from a clock a day ahead among them."""
    monkeypatch.setenv("PW_SMTP_USER", "plantwatch")
    monkeypatch.setenv("PW_SMTP_PASSWORD", "mail-s3cret")
    smtp_section = (
        f"  smtp: {{host: 127.0.0.1, port: {smtp.port}, security: starttls, ca_file: {smtp.certs['ca']},\n"
        "         username_env: PW_SMTP_USER, password_env: PW_SMTP_PASSWORD, from: alerts@works.example}\n"
    )
    config = plant_file(tmp_path, extra=smtp_section)
    config.write_text(
        config.read_text()
        + f"""mqtt: {{url: "{broker.url}", client_id: evt-test}}
influx: {{url: "{influxdb.url}", api: v1, database: {influx_db}, flush_interval: 200ms}}
buffer: {{path: buffer.sqlite}}
""",
        encoding="utf-8",
    )
    base = hour_start(5)
    run = start_plantwatch("run", "--config", str(config), log=tmp_path / "run.log")
    try:
        wait_for_log(tmp_path / "run.log", SUBSCRIBED)
        logger = MqttTestClient(broker, "cems-logger")
        topic = "plants/works/cems/stack-1/minute"
        for n, (ts, dust, flag) in enumerate(minutes(base)):
            document = {"DataTime": iso(ts), "a34013": dust, "a19001": 13.0, "flag": flag}
            logger.publish(topic, json.dumps(document))
            if n == 20:  # a clock that jumped a day ahead: refused, and the watermark stays put
                ahead = {"DataTime": iso(ts + 24 * HOUR_NS), "a34013": 900.0, "a19001": 13.0, "flag": "N"}
                logger.publish(topic, json.dumps(ahead))
        logger.close()
        wait_until(lambda: len(smtp.inbox.messages) >= 2, 60, "the FIRING and RESOLVED mails")
        query = (
            'SELECT "value", "numerator", "valid" FROM "plantwatch_kpi" '
            f"WHERE kind = 'closed' AND target = '{TARGET}' ORDER BY time"
        )
        wait_until(
            lambda: len(kpi_rows(influxdb, influx_db, query)) == 3, 30, "three closed hours in InfluxDB"
        )
    finally:
        assert stop(run) == 0, (tmp_path / "run.log").read_text()

    rows = kpi_rows(influxdb, influx_db, query)
    assert [(row[0], base + (i + 1) * HOUR_NS) for i, row in enumerate(rows)] == [
        (row[0], row[0]) for row in rows
    ]  # each point at the end of its hour, in event time
    assert [(row[1], row[2], row[3]) for row in rows] == [
        (55.0, 48.0, True),
        (None, 44.0, False),
        (30.0, 60.0, True),
    ]
    subjects = [str(m["Subject"]).strip() for m in smtp.inbox.messages]
    assert subjects == [
        "[FIRING] works stack-1: flue dust concentration, hourly average 55.0 mg/m³ (target ≤ 50.0 mg/m³)",
        "[RESOLVED] works stack-1: flue dust concentration, hourly average 30.0 mg/m³ (target ≤ 50.0 mg/m³)",
    ]
    body = mail_text(smtp.inbox.messages[0])
    assert "(late data: received after the window ended)" in body  # five hours old, seen now
    refused = influxdb.query(
        "SELECT reason FROM plantwatch_quality WHERE device = 'stack-1' AND \"field\" = 'dust'", influx_db
    )
    [reason] = {row[1] for row in refused[0]["values"]}
    assert reason.startswith("bad timestamp: ") and "ahead of this machine's clock" in reason
    samples = [
        json.loads(line) for line in (tmp_path / "plantwatch-mqtt-rejects.jsonl").read_text().splitlines()
    ]
    assert [(s["device"], s["reason"]) for s in samples] == [("stack-1", "bad field timestamp")]


def kpi_rows(influxdb: InfluxDBServer, db: str, query: str) -> list[list[object]]:
    series = influxdb.query(query, db)
    return series[0]["values"] if series else []


def mail_text(message: EmailMessage) -> str:
    return plain_text(message)


def test_the_same_minutes_a_minute_late_each_give_the_same_hours_and_transitions(tmp_path: Path) -> None:
    """A logger that stamps each minute with its start and sends it when the minute ends: every
    minute arrives 60 s after its stamp. The hours and transitions equal a replay of the same data
    (here: all arriving hours later), and those of the same data stamped with the minute's end."""
    base = hour_start(6)
    data = minutes(base)
    replay = [(base + 5 * HOUR_NS + i * 10**6, cems_result(ts, d, f)) for i, (ts, d, f) in enumerate(data)]
    live = [(ts + MINUTE_NS, cems_result(ts, d, f)) for ts, d, f in data]

    (tmp_path / "replay").mkdir()
    hours, fired, _ = run_in_process(load_plant_config(plant_file(tmp_path / "replay")), replay)
    assert hours == EXPECTED_HOURS
    assert [(event, rule) for event, rule, _ in fired if rule == TARGET] == [
        ("firing", TARGET),
        ("resolved", TARGET),
    ]

    (tmp_path / "live").mkdir()
    live_plant = load_plant_config(plant_file(tmp_path / "live"))
    live_hours, live_fired, service = run_in_process(live_plant, live)
    assert (live_hours, live_fired) == (hours, fired)
    assert not any(t.late for t in service.transitions)  # live data is not late
    assert len(list((tmp_path / "live" / "plantwatch-outbox" / "pending").glob("*.eml"))) == 2  # critical

    (tmp_path / "end").mkdir()  # stamped with the minute's end: 10:01:00 is minute 10:00
    stamped_end = [(a + MINUTE_NS, cems_result(r.event_ns + MINUTE_NS, *values(r))) for a, r in live]
    end_plant = load_plant_config(plant_file(tmp_path / "end", marks="end"))
    assert run_in_process(end_plant, stamped_end)[:2] == (hours, fired)


def test_a_silent_device_s_hours_close_by_the_timer_and_say_they_had_no_data(tmp_path: Path) -> None:
    """After its last minute the logger falls silent: its open hour (4 valid minutes) and the
    next (none) close by the wall clock, one lateness after their end, reported without a value."""
    base = hour_start(7)
    live = [(ts + MINUTE_NS, cems_result(ts, d, f)) for ts, d, f in minutes(base)]
    hours, _, _ = run_in_process(
        load_plant_config(plant_file(tmp_path)), live, silent_for_ns=2 * HOUR_NS + 10 * MINUTE_NS
    )
    assert hours == [*EXPECTED_HOURS, (None, 4.0), (None, 0.0)]


def values(reading: PollResult) -> tuple[float, str]:
    by_field = {r.field: r.value for r in reading.readings}
    return float(by_field["dust"]), str(by_field["data_flag"])  # type: ignore[arg-type]


def test_a_restart_mid_hour_continues_the_hour(tmp_path: Path) -> None:
    base = hour_start(6)
    data = [(ts + MINUTE_NS, cems_result(ts, d, f)) for ts, d, f in minutes(base)]
    plant = load_plant_config(plant_file(tmp_path))
    lines: list[str] = []
    clock = Clock(data[0][0])
    first = build_alert_service(plant, write_lines=lines.extend, clock=clock)
    for arrival, reading in data[:30]:  # half of hour A
        clock.run_until(first, arrival)
        first.handle(reading)
    first.close()  # a restart: the open minute, hour and early-warning minutes are saved
    second = build_alert_service(plant, write_lines=lines.extend, clock=clock)
    for arrival, reading in data[30:]:
        clock.run_until(second, arrival)
        second.handle(reading)
    assert closed_hours(lines) == EXPECTED_HOURS
    hourly = [(t.event, t.rule.id) for t in second.transitions if t.rule.id == TARGET]
    assert hourly == [("firing", TARGET), ("resolved", TARGET)]
    second.close()


def test_data_later_than_the_lateness_is_counted_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = hour_start(6)
    data = [(ts + MINUTE_NS, cems_result(ts, d, f)) for ts, d, f in minutes(base)]
    plant = load_plant_config(plant_file(tmp_path))
    lines: list[str] = []
    clock = Clock(data[0][0])
    service = build_alert_service(plant, write_lines=lines.extend, clock=clock)
    for arrival, reading in data:
        clock.run_until(service, arrival)
        service.handle(reading)
    with caplog.at_level(logging.WARNING, logger="plantwatch"):
        for minute in (10, 11):  # hour A is long closed: these come too late
            service.handle(cems_result(base + minute * MINUTE_NS, 500.0, "N"))
    assert closed_hours(lines) == EXPECTED_HOURS  # no hour re-opened, none reported twice
    assert service.engine.devices["stack-1"].gate.late == 2
    late_logs = [r for r in caplog.records if "came after their windows closed" in r.getMessage()]
    assert len(late_logs) == 1 and late_logs[0].levelname == "WARNING"  # once per episode
    service.close()


def test_a_once_a_minute_device_never_flaps_and_a_silent_one_is_stale_once(tmp_path: Path) -> None:
    """The map says nothing of its interval: an MQTT device publishes once a minute by default,
    so three hours of minute data raise nothing; ten silent minutes raise `stale` once, and two
    good messages in a row resolve it (one could be a fluke)."""
    base = hour_start(4)
    plant = load_plant_config(plant_file(tmp_path))
    clock = Clock(base)
    service = build_alert_service(plant, clock=clock)
    for minute in range(180):
        clock.run_until(service, base + minute * MINUTE_NS + 2 * 10**9, step_ns=10**9)
        service.handle(cems_result(base + minute * MINUTE_NS, 20.0, "N"))
    assert [t.rule.id for t in service.transitions if t.rule.id == "stale"] == []
    clock.run_until(service, base + 190 * MINUTE_NS, step_ns=10**9)  # ten silent minutes
    for minute in (190, 191, 192):
        service.handle(cems_result(base + minute * MINUTE_NS, 20.0, "N"))
        clock.run_until(service, base + (minute + 1) * MINUTE_NS, step_ns=10**9)
    stale = [(t.event, t.alert.since_ns) for t in service.transitions if t.rule.id == "stale"]
    assert [event for event, _ in stale] == ["firing", "resolved"]
    assert stale[0][1] == base + 179 * MINUTE_NS + 2 * 10**9  # since the last good data
    service.close()


@pytest.mark.slow
def test_a_dead_modbus_meter_is_stale_within_its_intervals_and_a_restart_does_not_churn(
    tmp_path: Path, influxdb: InfluxDBServer, influx_db: str
) -> None:
    refused = free_port()  # nothing listens: every poll is "cannot connect"
    config = tmp_path / "plant.yaml"
    config.write_text(
        f"""plant: {{id: works, name: Works}}
devices:
  - {{id: saf-1, map: saf_ferrosilicon, url: "tcp://127.0.0.1:{refused}", interval: 200ms, timeout: 150ms}}
influx: {{url: "{influxdb.url}", api: v1, database: {influx_db}, flush_interval: 200ms}}
buffer: {{path: buffer.sqlite}}
alerts:
  recipients: [{{name: Duty, email: duty@works.example, lang: en, role: plant}}]
  digest_at: null  # this test counts alert mails; the digest is tested in test_report_mail.py
""",
        encoding="utf-8",
    )
    pending = tmp_path / "plantwatch-outbox" / "pending"
    run = start_plantwatch("run", "--config", str(config), "--health-interval", "1s", log=tmp_path / "1.log")
    try:
        # five intervals of 200 ms without good data, checked every second
        [mail] = wait_until(lambda: list(pending.glob("*.eml")), 10, "the stale mail")
    finally:
        assert stop(run) == 0
    assert "-saf-1-firing.eml" in mail.name
    assert "no readings (the meter stopped reporting)" in mail.read_text()

    run = start_plantwatch("run", "--config", str(config), "--health-interval", "1s", log=tmp_path / "2.log")
    try:
        wait_until(lambda: log_count(tmp_path / "2.log", "health:") >= 3, 30, "three health reports")
    finally:
        assert stop(run) == 0
    assert list(pending.glob("*.eml")) == [mail]  # still stale: no RESOLVED, no second FIRING


def test_a_device_clock_from_registers_in_its_zone_or_as_an_epoch() -> None:
    clocked = parse_device_map(
        {
            "model": "logger",
            "description": "d",
            "sector": "emissions",
            "protocol": "modbus",
            "clock": {"timezone": "Asia/Shanghai", "marks": "start"},
            "registers": [
                {"name": "dust", "address": 0, "type": "float32", "role": "dust_concentration"},
                *(
                    {"name": part, "address": 10 + i, "role": f"clock_{part}"}
                    for i, part in enumerate(("year", "month", "day", "hour", "minute", "second"))
                ),
            ],
        },
        "logger.yaml",
    )
    clock = DeviceClock.of(clocked)  # type: ignore[arg-type]
    assert clock is not None
    parts = {"year": 2026, "month": 12, "day": 2, "hour": 4, "minute": 21, "second": 36}
    reading = result("d", 0, **parts)
    assert (
        clock.read({r.field: r for r in reading.readings})
        == int(datetime(2026, 12, 2, 4, 21, 36, tzinfo=SHANGHAI).timestamp()) * 10**9
    )
    with pytest.raises(ClockError, match="month"):
        bad = result("d", 0, **(parts | {"month": 13}))
        clock.read({r.field: r for r in bad.readings})
    with pytest.raises(ClockError, match="minute: timeout"):
        unread = result("d", 0, quality={"minute": "timeout"}, **parts)
        clock.read({r.field: r for r in unread.readings})


def test_a_device_gate_restores_pending_results_saved_by_this_and_earlier_releases() -> None:
    """Pending results are saved as readings-bus messages; releases before 2026-12 saved the
    one-result form (`ts` and `fields` at the top), which still loads."""
    gate = EventTimeGate(lateness_ns=10 * 10**9, silence_ns=60 * 10**9)
    pending = PollResult("saf-1", [Reading("saf-1", "active_energy", 5.0, 2 * 10**9)], 1, 2 * 10**9)
    assert gate.offer(pending, 2 * 10**9, 0) == []  # waits for the watermark
    state = gate.state()
    legacy = {
        **state,
        "pending": [
            [
                2 * 10**9,
                '{"plant": "", "device": "saf-1", "ts": 2000000000, "fields": {"active_energy":'
                ' {"value": 5.0, "quality": "good", "ts": 2000000000}}}',
            ],
        ],
    }
    for saved in (state, legacy):
        restored = EventTimeGate(lateness_ns=10 * 10**9, silence_ns=60 * 10**9)
        restored.restore(json.loads(json.dumps(saved)), now_ns=0)
        final = restored.tick(now_ns=120 * 10**9)  # silent long enough: everything is final
        assert [(ts, r.device, r.readings[0][1:4]) for ts, r in final] == [
            (2 * 10**9, "saf-1", ("active_energy", 5.0, 2 * 10**9))
        ]
