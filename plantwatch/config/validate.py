"""`plantwatch validate`: check device maps and plant configs, file by file or folder by folder."""

from __future__ import annotations

from pathlib import Path

from plantwatch.config.device_map import parse_device_map
from plantwatch.config.plant import parse_plant_config
from plantwatch.config.problems import ConfigError, Problem, read_yaml


def _yaml_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def validate_file(path: Path) -> list[Problem]:
    """Problems in one file; a document with a `plant` key is a plant config, else a device map."""
    try:
        data = read_yaml(path)
        if isinstance(data, dict) and "plant" in data:
            parse_plant_config(data, str(path), path.parent)
        else:
            parse_device_map(data, str(path), expected_model=path.stem)
    except ConfigError as exc:
        return exc.problems
    return []


def validate_paths(paths: list[Path]) -> tuple[list[Path], list[Problem]]:
    """Every YAML file under `paths` and the problems found in them (duplicates removed)."""
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if not path.exists():
            problems.append(Problem(str(path), "", "no such file or folder"))
            continue
        files.extend(_yaml_files(path))
    for file in files:
        for problem in validate_file(file):
            if problem not in problems:
                problems.append(problem)
    return files, problems
