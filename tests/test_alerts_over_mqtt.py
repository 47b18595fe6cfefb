"""`plantwatch alerts` on the readings bus: a real Mosquitto (MQTT 5) or the embedded amqtt broker
(MQTT 3.1.1), the service as a subprocess."""

from __future__ import annotations

import json
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwatch.contract.bus import BusMessageError, bus_payload, bus_topic, results_from_bus
from plantwatch.core.reading import PollResult, Reading
from tests.alert_helpers import HOUR_NS, T0, plain_text, result
from tests.mqtt_helpers import SUBSCRIBED, MqttTestClient
from tests.services.amqtt_broker import AmqttServer
from tests.services.mosquitto import MosquittoServer
from tests.services.processes import start_plantwatch, stop, wait_for_log
from tests.waiting import wait_until


def test_bus_messages_round_trip_and_bad_ones_are_named() -> None:
    sent = [
        result("saf-1", T0, active_energy=1000.0, tap_counter=3, tap_weight=7.5),
        result("saf-1", T0 + 10**9, active_energy=1001.5, tap_counter=3, tap_weight=None),
    ]
    back = results_from_bus(bus_payload("works", "saf-1", sent))
    assert [(b.device, b.started_ns) for b in back] == [("saf-1", T0), ("saf-1", T0 + 10**9)]
    for one, other in zip(back, sent, strict=True):
        assert [(r.field, r.value, r.quality, r.timestamp_ns) for r in one.readings] == [
            (r.field, r.value, r.quality, r.timestamp_ns) for r in other.readings
        ]
    field_4 = b'{"value": 1, "quality": "good", "ts": 4}'
    # the one-result form of plantwatch/v1, which alert state files of earlier releases hold
    legacy = b'{"plant": "works", "device": "saf-1", "ts": 5, "fields": {"a": %s}}' % field_4
    (old,) = results_from_bus(legacy)
    assert (old.device, old.started_ns, old.readings[0][1:4]) == ("saf-1", 5, ("a", 1, 4))
    field = '{"value": 1, "quality": "good", "ts": %d}'
    for bad in (
        b"not json",
        b"[]",
        b'{"device": "saf-1"}',
        b'{"device": "x", "ts": 1, "fields": {"a": 1}}',
        b'{"device": "x", "ts": -1, "fields": {}}',
        ('{"device": "x", "ts": 1, "fields": {"a": %s}}' % (field % 2**63)).encode(),
        b'{"device": "x", "results": {"ts": 1, "fields": {}}}',
        b'{"device": "x", "results": [{"ts": 1, "fields": {}}, {"ts": 2}]}',
        b'{"device": "x", "results": [{"ts": 1, "fields": {"a": {"value": 1, "quality": "good"}}}]}',
    ):
        with pytest.raises(BusMessageError, match="not a readings-bus message"):
            results_from_bus(bad)


def json_encoding(plant: str, device: str, results: list[PollResult]) -> bytes:
    """The bus message as the contract describes it, written by the `json` module."""
    encoded = []
    for one in results:
        fields: dict[str, object] = {}
        for r in one.readings:
            entry: dict[str, object] = {"value": r.value, "quality": r.quality, "ts": r.timestamp_ns}
            entry |= {"unit": r.unit} if r.unit else {}
            entry |= {"role": r.role} if r.role else {}
            fields[r.field] = entry
        encoded.append({"ts": one.started_ns, "fields": fields})
    message = {"plant": plant, "device": device, "results": encoded}
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


texts = st.text(max_size=12)  # quotes, backslashes, control characters, any script
values = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | texts
readings = st.builds(
    Reading,
    device=st.just("saf-1"),
    field=texts,
    value=values,
    timestamp_ns=st.integers(0, 2**63 - 1),
    quality=st.sampled_from(["good", "timeout", 'decode error: "x"\n']) | texts,
    unit=st.none() | texts,
    role=st.none() | texts,
)


@given(
    st.lists(
        st.builds(
            PollResult,
            device=st.just("saf-1"),
            readings=st.lists(readings, max_size=4, unique_by=lambda r: r.field),
            started_ns=st.integers(0, 2**63 - 1),
        ),
        min_size=1,
        max_size=3,
    )
)
@settings(max_examples=300)
def test_the_bus_text_is_what_the_json_module_writes(results: list[PollResult]) -> None:
    """Field names are unique within a result, as a map's are."""
    assert bus_payload("works", "saf-1", results) == json_encoding("works", "saf-1", results)


@pytest.mark.parametrize(
    ("server", "version", "subscription"),
    [
        ("broker", "5", "reading $share/plantwatch-alerts/plantwatch/v2/works/+"),  # Mosquitto
        ("amqtt_broker", "3.1.1", "reading plantwatch/v2/works/+"),  # no shared subscriptions
    ],
)
def test_alerts_service_reads_the_bus_and_writes_the_breach_email_to_the_outbox(
    server: str, version: str, subscription: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    broker: MosquittoServer | AmqttServer = request.getfixturevalue(server)
    config = tmp_path / "plant.yaml"
    config.write_text(
        f"""
plant: {{id: works, name: Works}}
devices:
  - {{id: saf-1, map: saf_ferrosilicon, url: "tcp://127.0.0.1:1"}}
mqtt: {{url: "{broker.url}", client_id: alerts-test, protocol_version: "{version}"}}
alerts:
  recipients: [{{name: Duty, email: duty@eco.example, lang: en, role: plant}}]
"""
    )
    service = start_plantwatch("alerts", "--config", str(config), log=tmp_path / "alerts.log")
    try:
        wait_for_log(tmp_path / "alerts.log", SUBSCRIBED)
        device = MqttTestClient(broker, "collector-stand-in")
        device.publish(bus_topic("works", "saf-1"), b"garbage")  # logged, acknowledged, skipped
        for hour, (energy, taps, weight) in enumerate([(0, 1, 8), (1000, 2, 8), (70000, 3, 8)]):
            ts = T0 + hour * HOUR_NS
            message = result("saf-1", ts, active_energy=energy, tap_counter=taps, tap_weight=weight)
            device.publish(bus_topic("works", "saf-1"), bus_payload("works", "saf-1", [message]))
        pending = tmp_path / "plantwatch-outbox" / "pending"
        wait_until(lambda: list(pending.glob("*.eml")), 30, "a mail in the outbox")
        wait_for_log(tmp_path / "alerts.log", "not a readings-bus message")
        device.close()
    finally:
        assert stop(service) == 0
    [path] = list(pending.glob("*.eml"))
    mail = BytesParser(policy=policy.SMTP).parsebytes(path.read_bytes())
    assert (
        mail["Subject"].strip()
        == "[FIRING] works saf-1: ferrosilicon unit power consumption 8,625 kWh/t (target ≤ 7,800 kWh/t)"
    )
    assert "Calculation: energy 69,000 kWh ÷ production 8.00 t = 8,625 kWh/t" in plain_text(mail)
    log = (tmp_path / "alerts.log").read_text()
    assert subscription in log and f"(MQTT {version}, new session)" in log
    assert "not a readings-bus message" in log
