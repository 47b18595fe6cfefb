"""Alert workers partitioned by device (`plantwatch alerts --worker I/N`): devices computed together
stay on one worker, every device on exactly one; two workers on a real Mosquitto give exactly the
mails of one worker, none twice, and a worker killed with SIGKILL and restarted loses nothing."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from plantwatch.alerts.partition import Worker, units, worker_devices, worker_plant
from plantwatch.alerts.setup import build_alert_service
from plantwatch.config.plant import Plant, load_plant_config
from plantwatch.config.targets import resolve_targets
from plantwatch.contract.bus import bus_payload, bus_topic
from tests.alert_helpers import HOUR_NS, T0, plain_text, result
from tests.mqtt_helpers import SUBSCRIBED, MqttTestClient
from tests.services.mosquitto import MosquittoServer
from tests.services.processes import start_plantwatch, stop, wait_for_log
from tests.test_cli import plantwatch
from tests.waiting import wait_until

FURNACES = {  # device -> map, and its per-tap target's value
    "saf-1": ("saf_ferrosilicon", 7800.0),
    "saf-2": ("saf_ferrochrome", 2800.0),
    "saf-3": ("saf_ferronickel", 11000.0),
    "saf-4": ("saf_ferrosilicon", 7800.0),
    "saf-5": ("saf_ferrochrome", 2800.0),
    "saf-6": ("saf_ferronickel", 11000.0),
}
# each furnace's taps as shares of its target: breached at the 3rd, resolved at the 5th
TAPS = [0.9, 0.95, 1.1, 1.08, 0.9, 0.9]


def plant_file(
    folder: Path, broker: MosquittoServer | None = None, client_id: str = "ref", targets: str = ""
) -> Path:
    folder.mkdir(exist_ok=True)
    devices = "\n".join(
        f'  - {{id: {d}, map: {m}, url: "tcp://127.0.0.1:1", unit: {i}, interval: 1h}}'
        for i, (d, (m, _)) in enumerate(FURNACES.items(), start=1)
    )
    mqtt = f'mqtt: {{url: "{broker.url}", client_id: {client_id}}}' if broker else ""
    config = folder / "plant.yaml"
    config.write_text(
        f"""
plant: {{id: works, name: Works}}
devices:
{devices}
{mqtt}
alerts:
  targets: {{ferroalloy-feni-unit-power: {{value: 11000}}{targets}}}
  recipients: [{{name: Duty, email: duty@works.example, lang: en, role: plant}}]
  digest_at: null
""",
        encoding="utf-8",
    )
    return config


def partition(plant: Plant, count: int) -> list[set[str]]:
    targets = resolve_targets(plant.config.alerts, "plant.yaml")
    return [worker_devices(plant, targets, Worker(i, count)) for i in range(1, count + 1)]


def test_worker_is_parsed_and_bad_ones_are_named() -> None:
    assert Worker.parse("2/3") == Worker(2, 3) and (Worker(2, 3).name, Worker(2, 3).tag) == (
        "worker-2",
        "2/3",
    )
    for bad, said in (("3/2", "runs from 1 to 2"), ("0/2", "not a worker"), ("two", "not a worker")):
        with pytest.raises(ValueError, match=said):
            Worker.parse(bad)


def test_a_bad_worker_argument_is_named_and_nothing_runs(tmp_path: Path) -> None:
    config = plant_file(tmp_path)
    done = plantwatch("alerts", "--config", str(config), "--worker", "3/2")
    assert done.returncode == 1
    assert done.stderr.strip() == "--worker: worker 3 of 2: the index runs from 1 to 2"


def test_devices_computed_together_stay_together_and_each_is_on_one_worker(tmp_path: Path) -> None:
    plant = load_plant_config(plant_file(tmp_path))
    targets = resolve_targets(plant.config.alerts, "plant.yaml")
    # the two ferrosilicon furnaces make one plant total (judged over the month): one unit; so do
    # the ferrochrome and the ferronickel pairs
    assert units(plant, targets) == [
        frozenset({"saf-1", "saf-4"}),
        frozenset({"saf-2", "saf-5"}),
        frozenset({"saf-3", "saf-6"}),
    ]
    for count in (1, 2, 3, 4):
        shares = partition(plant, count)
        assert sorted(d for share in shares for d in share) == sorted(FURNACES)  # each once
        assert shares == partition(plant, count)  # stable
    two, three = partition(plant, 2), partition(plant, 3)
    assert all(two)  # these ids spread over both workers
    moved = [
        d
        for d in FURNACES
        if next(i for i, s in enumerate(two) if d in s) != next(i for i, s in enumerate(three) if d in s)
    ]
    assert set(moved) <= three[2]  # a third worker takes units; none moves between the first two
    mine = worker_plant(plant, two[0], Worker(1, 2))
    assert {d.id for d in mine.config.devices} == two[0] == set(mine.maps)
    # worker 1 keeps the plant's files (those `plantwatch silence` and `report --send` use)
    assert mine.config.alerts.state == "plantwatch-alerts.sqlite"
    assert mine.config.alerts.outbox == "plantwatch-outbox"
    other = worker_plant(plant, two[1], Worker(2, 2)).config.alerts
    assert (other.state, other.outbox) == ("plantwatch-alerts.worker-2.sqlite", "plantwatch-outbox.worker-2")


def test_a_capacity_target_keeps_every_ferroalloy_furnace_on_one_worker(tmp_path: Path) -> None:
    capped = load_plant_config(plant_file(tmp_path, targets=", ferroalloy-capacity: {value: 150000}"))
    targets = resolve_targets(capped.config.alerts, "plant.yaml")
    assert units(capped, targets) == [frozenset(FURNACES)]
    assert [len(share) for share in partition(capped, 2)] in ([6, 0], [0, 6])


def publish_taps(client: MqttTestClient, messages: range) -> None:
    """Messages `messages` (0-based) of every furnace: a tap each hour, 8 t, energy so that tap k
    is TAPS[k] of the target (the first two messages open the first tap)."""
    for n in messages:
        for device, (_, limit) in FURNACES.items():
            energy = sum(TAPS[k] * limit * 8 for k in range(max(0, n - 1)))
            message = result(
                device, T0 + n * HOUR_NS, active_energy=1000.0 + energy, tap_counter=n + 1, tap_weight=8.0
            )
            client.publish(bus_topic("works", device), bus_payload("works", device, [message]))


def mails(*outboxes: Path) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for outbox in outboxes:
        for path in (outbox / "pending").glob("*.eml"):
            mail = BytesParser(policy=policy.SMTP).parsebytes(path.read_bytes())
            # every line but when it was detected: the wall time of the worker that read it
            text = "\n".join(
                line for line in plain_text(mail).splitlines() if not line.startswith("Detected:")
            )
            out[(str(mail["Subject"]).strip(), text)] += 1
    return out


def test_two_workers_mail_exactly_what_one_does_and_a_killed_worker_loses_nothing(
    broker: MosquittoServer, tmp_path: Path
) -> None:
    one = plant_file(tmp_path / "one", broker, "one")
    two = plant_file(tmp_path / "two", broker, "two")
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str, config: Path, *worker: str) -> None:
        log = tmp_path / f"{name}.log"
        log.unlink(missing_ok=True)
        processes[name] = start_plantwatch("alerts", "--config", str(config), *worker, log=log)
        wait_for_log(log, SUBSCRIBED)

    start("one", one)
    start("w1", two, "--worker", "1/2")
    start("w2", two, "--worker", "2/2")
    outboxes = [tmp_path / "two" / "plantwatch-outbox", tmp_path / "two" / "plantwatch-outbox.worker-2"]
    client = MqttTestClient(broker, "collector-stand-in")
    try:
        publish_taps(client, range(5))  # to the breach
        wait_until(
            lambda: sum(mails(tmp_path / "one" / "plantwatch-outbox").values()) == 6, 30, "6 FIRING mails"
        )
        wait_until(lambda: sum(mails(*outboxes).values()) == 6, 30, "6 FIRING mails from the workers")
        processes["w2"].kill()  # SIGKILL: no goodbye, no checkpoint
        processes["w2"].wait()
        publish_taps(client, range(5, 8))  # the resolution, while worker 2 is down
        wait_until(lambda: sum(mails(tmp_path / "one" / "plantwatch-outbox").values()) == 12, 30, "12 mails")
        start("w2", two, "--worker", "2/2")  # its session kept worker 2's messages
        wait_until(lambda: sum(mails(*outboxes).values()) >= 12, 30, "12 mails from the workers")
    finally:
        client.close()
        for name, process in processes.items():
            if process.poll() is None:
                assert stop(process) == 0, (tmp_path / f"{name}.log").read_text()
    reference = mails(tmp_path / "one" / "plantwatch-outbox")
    assert mails(*outboxes) == reference  # the same mails, each once
    assert set(reference.values()) == {1} and len(reference) == 12
    subjects = sorted(subject for subject, _ in reference)
    assert sum(s.startswith("[FIRING]") for s in subjects) == 6
    assert sum(s.startswith("[RESOLVED]") for s in subjects) == 6
    for outbox in outboxes:
        assert mails(outbox)  # both workers mailed: the devices were split


def test_a_silence_reaches_every_worker(tmp_path: Path) -> None:
    """`plantwatch silence` writes the plant's state file; worker 1 keeps it, the others read
    their silences from it."""
    config = plant_file(tmp_path)
    done = plantwatch("silence", "--config", str(config), "--all", "--for", "1h", "--comment", "reline")
    assert done.returncode == 0, done.stderr
    plant = load_plant_config(config)
    now = time.time_ns()
    for worker, devices in zip((Worker(1, 2), Worker(2, 2)), partition(plant, 2), strict=True):
        mine = worker_plant(plant, devices, worker)
        service = build_alert_service(mine, silences=tmp_path / plant.config.alerts.state)
        try:
            [silence] = service.store.silences(now)
            assert silence.comment == "reline" and silence.device is None
        finally:
            service.close()
