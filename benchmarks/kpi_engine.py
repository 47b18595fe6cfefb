"""KPI engine benchmark: readings/s through the alert service for 1,000 simulated devices.

    python -m benchmarks.kpi_engine                  # 1,000 devices × 120 polls, about a minute
    python -m benchmarks.kpi_engine --devices 200 --polls 60

The devices cycle through the shipped Modbus maps with a plan target (ferroalloy furnaces,
cement kiln, pot line, EAF, coke oven, sinter strand, dust CEMS). Their readings come from the
simulator's signals, one poll per simulated minute, so taps, heats, dust hours and calendar
days all happen and alerts fire. The results are built before timing starts; then every one
goes through `AlertService.handle` (KPIs, rules, state, outbox, KPI lines) as the collector's
sink listener would call it.

The baseline, measured in the same run on the same results, is the line-protocol encoding
the collector already does for every reading (`poll_lines`): the ratio says how the alert
service's cost per reading compares with the cost of writing the reading at all.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import save
from plantwatch.alerts.setup import build_alert_service
from plantwatch.collector.sink import plant_series
from plantwatch.config.plant import Plant, load_plant_config
from plantwatch.contract.influx import poll_lines
from plantwatch.simulator.history import history

MAPS = [
    "saf_ferrosilicon",
    "saf_ferrochrome",
    "cement_kiln_line",
    "aluminium_potline",
    "steel_eaf",
    "coke_oven",
    "sinter_machine",
    "dust_cems",
]
T0_NS = 1_764_000_000 * 10**9
POLL_S = 60  # simulated seconds between polls


def plant_of(folder: Path, devices: int) -> Plant:
    lines = [
        f'  - {{id: dev-{i:04d}, map: {MAPS[i % len(MAPS)]}, url: "tcp://127.0.0.1:{20000 + i}"}}'
        for i in range(devices)
    ]
    config = folder / "plant.yaml"
    config.write_text("plant: {id: works, name: Works}\ndevices:\n" + "\n".join(lines) + "\n")
    return load_plant_config(config)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--polls", type=int, default=120, help="per device, one per simulated minute")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # a transition logs a line; not what is measured
    with tempfile.TemporaryDirectory() as tmp:
        plant = plant_of(Path(tmp), args.devices)
        print(f"simulating {args.devices} devices × {args.polls} polls", flush=True)
        results = list(history(plant, start_ns=T0_NS, polls=args.polls, step_s=POLL_S))
        readings = sum(len(r.readings) for r in results)

        series = plant_series(plant)
        started = time.perf_counter()
        encoded = sum(len(poll_lines(series[r.device], r)) for r in results)
        baseline_s = time.perf_counter() - started

        written: list[str] = []
        # the service's clock stands at the end of the history: every reading is in its past (a
        # clock at T0 put them all beyond event_time.max_skew, unusable: nothing was measured)
        end_ns = T0_NS + args.polls * POLL_S * 10**9
        service = build_alert_service(plant, write_lines=written.extend, clock=lambda: end_ns)
        print(f"alert service: {len(results):,} results, {readings:,} readings", flush=True)
        started = time.perf_counter()
        for result in results:
            service.handle(result)
        ours_s = time.perf_counter() - started
        service.close()
    demanded = sum(len(r.readings) for r in results[: args.devices])  # readings/s with every device at 1 s
    result: dict[str, object] = {
        "devices": args.devices,
        "results": len(results),
        "readings": readings,
        "line_protocol_readings_per_s": round(readings / baseline_s),
        "alert_service_readings_per_s": round(readings / ours_s),
        "ratio": round(baseline_s / ours_s, 3),
        "readings_per_s_at_1s_polling": round(demanded),
        "kpi_and_alert_lines": len(written),
        "transitions": len(service.transitions),
        "line_protocol_lines": encoded,
        "python": sys.version.split()[0],
    }
    print(json.dumps(result, indent=2))
    if not service.transitions:
        print("no alert fired: the run did not exercise the alert service", file=sys.stderr)
        return 1
    save("kpi_engine", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
