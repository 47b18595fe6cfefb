"""Where a benchmark's result goes: `benchmarks/results/<name>.json` (not committed)."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def save(name: str, result: object) -> None:
    """Write `result` as indented JSON to `results/<name>.json`."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
