"""Alert workers benchmark: bus messages/s through `plantwatch alerts`, one worker and two workers
partitioned by device (`--worker I/2`), against a bare paho subscriber, same stream, same run.

    python -m benchmarks.alert_workers                 # 3 rounds, 100 furnaces × 300 taps
    python -m benchmarks.alert_workers --devices 20 --taps 50 --rounds 1

Each round starts a fresh Mosquitto. Four persistent sessions subscribe to the plant's bus (the
bare subscriber, one worker, and workers 1/2 and 2/2 on their devices' topics), then go away;
the same messages are queued for each: every furnace's taps, one bus message each (QoS 1), the
last tap of every furnace a breach. The baseline is a bare paho-mqtt subscriber (its own
thread, auto-ack) that decodes every message with the bus contract (`results_from_bus`). The
workers are the real service in their own processes, timed from their start until every
furnace's FIRING mail is in their outboxes, so start-up (about a second) is included. Medians
over the rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks.mqtt_ingest import session_client
from benchmarks.report import save
from plantwatch.contract.bus import bus_payload, bus_subscription, bus_topic, results_from_bus
from tests.alert_helpers import HOUR_NS, T0, result
from tests.services.mosquitto import MosquittoServer
from tests.services.processes import start_plantwatch, stop, wait_for_log

SUBSCRIBED = "MQTT subscribed to"
WORKERS = {"one": [], "w1": ["--worker", "1/2"], "w2": ["--worker", "2/2"]}  # name -> arguments
GROUPS = {"one": "one", "w1": "two", "w2": "two"}  # name -> the folder of its plant.yaml and files


def plant(folder: Path, broker: MosquittoServer, devices: int) -> Path:
    """The plant of 100 furnaces in `folder` (its state files and outboxes go there too)."""
    folder.mkdir()
    lines = [
        f'  - {{id: saf-{i:03d}, map: saf_ferrosilicon, url: "tcp://127.0.0.1:1", unit: {i % 247 + 1}, '
        "interval: 1h}"
        for i in range(devices)
    ]
    config = folder / "plant.yaml"
    config.write_text(
        f"""plant: {{id: works, name: Works}}
devices:
{chr(10).join(lines)}
mqtt: {{url: "{broker.url}", client_id: bench-{folder.name}}}
alerts:
  # no plant total over the month: it would keep every ferrosilicon furnace on one worker
  targets: {{ferroalloy-fesi-unit-power: {{judged_over: []}}}}
  recipients: [{{name: Duty, email: duty@works.example, lang: en, role: plant}}]
  digest_at: null
""",
        encoding="utf-8",
    )
    return config


def create_sessions(folder: Path, broker: MosquittoServer) -> None:
    """Every consumer subscribes once and goes away: the broker queues for it from now on."""
    bare = session_client(broker, "bench-bare")
    bare.loop_start()
    bare.subscribe(bus_subscription("works"), qos=1)
    for name, worker in WORKERS.items():
        log = folder / f"{name}-session.log"
        config = folder / GROUPS[name] / "plant.yaml"
        process = start_plantwatch("alerts", "--config", str(config), *worker, log=log)
        wait_for_log(log, SUBSCRIBED)
        assert stop(process) == 0, log.read_text()
    bare.disconnect()
    bare.loop_stop()


def publish(broker: MosquittoServer, devices: int, taps: int) -> int:
    """Every furnace's taps, hour by hour; each 8 t at 7,000 kWh/t but the last (9,000): one
    FIRING mail per furnace, at its last tap."""
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    infos = []
    for n in range(taps + 2):  # two messages open the first tap
        for i in range(devices):
            device = f"saf-{i:03d}"
            # tap k (k >= 1) ends at message k + 1: 7,000 kWh/t × 8 t, the last 9,000 × 8
            energy = 1000.0 + max(0, n - 1) * 7000.0 * 8 + (2000.0 * 8 if n == taps + 1 else 0.0)
            message = result(
                device, T0 + n * HOUR_NS, active_energy=energy, tap_counter=n + 1, tap_weight=8.0
            )
            infos.append(
                client.publish(bus_topic("works", device), bus_payload("works", device, [message]), qos=1)
            )
    for info in infos:
        info.wait_for_publish(timeout=300)
    client.disconnect()
    client.loop_stop()
    return len(infos)


def bare_subscriber(broker: MosquittoServer, count: int) -> float:
    """Seconds for a plain paho subscriber to receive and decode its queued `count`."""
    done = threading.Event()
    received = 0

    def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        nonlocal received
        results_from_bus(message.payload)
        received += 1
        if received >= count:
            done.set()

    started = time.perf_counter()
    client = session_client(broker, "bench-bare")
    client.on_message = on_message
    client.loop_start()
    assert done.wait(600), f"bare subscriber got {received} of {count}"
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return elapsed


def mails(outboxes: list[Path]) -> int:
    return sum(len(list((outbox / "pending").glob("*.eml"))) for outbox in outboxes)


def workers(folder: Path, names: list[str], devices: int) -> float:
    """Seconds from starting the workers `names` until every furnace's FIRING mail is out."""
    group = folder / GROUPS[names[0]]
    outboxes = [group / "plantwatch-outbox", group / "plantwatch-outbox.worker-2"]
    started = time.perf_counter()
    processes = [
        start_plantwatch(
            "alerts", "--config", str(group / "plant.yaml"), *WORKERS[n], log=folder / f"{n}.log"
        )
        for n in names
    ]
    while mails(outboxes) < devices:
        assert all(p.poll() is None for p in processes), "a worker exited"
        assert time.perf_counter() - started < 600, f"{mails(outboxes)} of {devices} mails"
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    for process in processes:
        assert stop(process) == 0
    assert mails(outboxes) == devices, "a mail twice"
    return elapsed


def one_round(devices: int, taps: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = MosquittoServer(folder / "mosquitto")
        broker.start()
        try:
            for group in set(GROUPS.values()):
                plant(folder / group, broker, devices)
            create_sessions(folder, broker)
            count = publish(broker, devices, taps)
            bare = bare_subscriber(broker, count)
            one = workers(folder, ["one"], devices)
            two = workers(folder, ["w1", "w2"], devices)
        finally:
            broker.stop()
    return {
        "messages": count,
        "bare_paho_decode_messages_per_s": round(count / bare),
        "one_worker_messages_per_s": round(count / one),
        "two_workers_messages_per_s": round(count / two),
        "one_worker_vs_bare": round(bare / one, 3),
        "two_workers_vs_one": round(one / two, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--taps", type=int, default=300, help="per furnace, one bus message each")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = []
    for number in range(1, args.rounds + 1):
        print(f"round {number}/{args.rounds}: {args.devices} furnaces × {args.taps + 2} messages", flush=True)
        rounds.append(one_round(args.devices, args.taps))
        print(f"  {rounds[-1]}", flush=True)
    result: dict[str, object] = {
        "devices": args.devices,
        "rounds": rounds,
        **{key: statistics.median(r[key] for r in rounds) for key in rounds[0] if key != "messages"},
        "python": sys.version.split()[0],
    }
    print(json.dumps(result, indent=2))
    save("alert_workers", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
