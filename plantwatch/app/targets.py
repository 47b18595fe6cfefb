"""`plantwatch targets`: the plan targets, with a plant's overrides, and where each comes from."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from plantwatch.app.exit_codes import EXIT_OK
from plantwatch.config.alerts import AlertsConfig
from plantwatch.config.plant import load_plant_config
from plantwatch.config.targets import resolve_targets


def command(args: argparse.Namespace) -> int:
    """List the plan targets (with a plant's overrides) and where each comes from."""
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
        applies = f"{t.sector}/{t.product or '*'}" + (
            " over a group of devices (plant.yaml groups)" if t.scope == "group" else ""
        )
        print(f"    {applies}: {t.indicator('en')}, {value}, window {t.window}, from {t.effective}")
        print(f"    {t.plan.cite('en')}, {t.clause('en')}: {t.quote('en')}")
        print(f"    {t.plan.cite('zh')}{t.clause('zh')}：{t.quote('zh')}")
    return EXIT_OK
