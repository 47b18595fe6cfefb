"""`plantwatch silence`: add, list or end silences in the alert service's state file."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from plantwatch.alerts.state import StateStore
from plantwatch.app.exit_codes import EXIT_INVALID, EXIT_OK
from plantwatch.config.plant import load_plant_config


def command(args: argparse.Namespace) -> int:
    """Add, list or end silences in the alert service's state file."""
    plant = load_plant_config(Path(args.config))
    base = plant.path.parent if plant.path else Path.cwd()
    store = StateStore(base / plant.config.alerts.state)
    now = time.time_ns()
    try:
        if args.end is not None:
            if not store.expire_silence(args.end, now):
                print(f"no active silence {args.end}", file=sys.stderr)
                return EXIT_INVALID
            print(f"silence {args.end} ended")
        elif args.duration is not None:
            if not (args.device or args.rule or args.all):
                print(
                    "name a --device or a --rule, or pass --all to silence the whole plant", file=sys.stderr
                )
                return EXIT_INVALID
            ends = now + int(args.duration * 1e9)
            number = store.add_silence(
                ends,
                now,
                plant=plant.config.plant.id,
                device=args.device,
                rule=args.rule,
                comment=args.comment,
            )
            print(f"silence {number}: until {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(ends / 1e9))}")
        for silence in store.silences(now):
            until = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(silence.ends_ns / 1e9))
            print(
                f"{silence.id}: device {silence.device or '*'} rule {silence.rule or '*'} until {until}"
                f"  {silence.comment}"
            )
    finally:
        store.close()
    return EXIT_OK
