"""`plantwatch dashboards build|push`: regenerate or check the committed JSON, or upload it.

With `--config plant.yaml` the device panels also select the plant's own maps' fields by role, so a
map the shipped ones do not know still gets its power, energy, tap and dust panels.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from plantwatch.app.exit_codes import EXIT_INVALID, EXIT_OK
from plantwatch.config.plant import load_plant_config
from plantwatch.dashboards.build import Maps, build_all, shipped_maps
from plantwatch.dashboards.files import load_dashboards, stale_dashboards, write_dashboards
from plantwatch.dashboards.push import PushError, push_dashboards


def plant_maps(config: str) -> Maps:
    """The shipped maps and the plant's own, one per model."""
    plant = load_plant_config(Path(config))
    by_model = {m.model: m for m in shipped_maps()}
    by_model.update({m.model: m for m in plant.maps.values()})
    return list(by_model.values())


def command(args: argparse.Namespace) -> int:
    """Regenerate or check the committed dashboard JSON, or push it to Grafana."""
    maps = plant_maps(args.config) if args.config else None
    if args.action == "build":
        if args.config and not args.out:
            print("dashboards build --config: name the folder to write them to with --out", file=sys.stderr)
            return EXIT_INVALID
        folder = Path(args.out) if args.out else None
        if args.check:
            problems = stale_dashboards(folder, maps)
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                print("run `plantwatch dashboards build` and commit the result", file=sys.stderr)
            return EXIT_INVALID if problems else EXIT_OK
        for path in write_dashboards(folder, maps):
            print(path)
        return EXIT_OK
    token = os.environ.get(args.token_env)
    if not token:
        print(
            f"dashboards push: environment variable {args.token_env} (the Grafana token) is not set",
            file=sys.stderr,
        )
        return EXIT_INVALID
    dashboards = build_all(maps) if maps is not None else load_dashboards()
    try:
        push_dashboards(dashboards, args.url, token, folder_uid=args.folder_uid, progress=print)
    except PushError as exc:
        print(f"dashboards push: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK
