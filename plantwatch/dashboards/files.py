"""The committed dashboard JSON files and provisioning folder: where they are, writing and checking them."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from plantwatch.dashboards.build import Maps, build_all


def dashboards_dir() -> Path:
    """Folder of the generated dashboard JSON files (`<uid>.json`), mounted into Grafana."""
    return Path(str(resources.files("plantwatch") / "dashboards" / "json"))


def provisioning_dir() -> Path:
    """Grafana's provisioning folder: the InfluxDB datasource and the dashboard provider."""
    return Path(str(resources.files("plantwatch") / "dashboards" / "provisioning"))


def render(model: dict[str, Any]) -> str:
    """A dashboard as committed: sorted keys, two-space indent, final newline (stable diffs)."""
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_dashboards(folder: Path | None = None, maps: Maps | None = None) -> list[Path]:
    """Regenerate every dashboard into `folder` (default: the shipped one) for `maps` (default: the
    shipped maps); the files written."""
    folder = folder or dashboards_dir()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for uid, model in build_all(maps).items():
        path = folder / f"{uid}.json"
        path.write_text(render(model), encoding="utf-8")
        written.append(path)
    return written


def stale_dashboards(folder: Path | None = None, maps: Maps | None = None) -> list[str]:
    """Why the files in `folder` differ from what the code builds for `maps` (empty when identical)."""
    folder = folder or dashboards_dir()
    built = build_all(maps)
    problems = [
        f"{folder / (uid + '.json')}: differs from what plantwatch/dashboards/build.py makes"
        for uid, model in built.items()
        if not (folder / f"{uid}.json").is_file()
        or (folder / f"{uid}.json").read_text(encoding="utf-8") != render(model)
    ]
    problems += [
        f"{path}: no dashboard in build.py has uid {path.stem!r}"
        for path in sorted(folder.glob("*.json"))
        if path.stem not in built
    ]
    return problems


def load_dashboards(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """The committed dashboards, uid → JSON."""
    folder = folder or dashboards_dir()
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}
