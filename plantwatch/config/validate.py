"""`plantwatch validate`: check device maps and plant configs, file by file or folder by folder."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import BaseModel

from plantwatch.config.device_map import parse_device_map
from plantwatch.config.plant import parse_plant_config
from plantwatch.config.problems import ConfigError, Problem, read_yaml
from plantwatch.config.secrets import SecretError, secret


def _yaml_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def validate_file(path: Path) -> list[Problem]:
    """Problems in one file; a document with a `plant` key is a plant config, else a device map."""
    data: object = None
    try:
        data = read_yaml(path)
        if isinstance(data, dict) and "plant" in data:
            plant = parse_plant_config(data, str(path), path.parent)
            return secret_problems(plant.config, str(path))
        else:
            parse_device_map(data, str(path), expected_model=path.stem)
    except ConfigError as exc:
        if isinstance(data, dict) and "plant" in data:  # the missing secrets beside the other problems
            return exc.problems + _missing(_raw_secret_keys(data), str(path))
        return exc.problems
    return []


def secret_problems(config: BaseModel, file: str) -> list[Problem]:
    """Every `*_env` key naming a variable that is not set (nor its `_FILE` twin): the commands
    would refuse to start. The problem names the variable, never a value."""
    return _missing(_secret_keys(config), file)


def _missing(keys: Iterable[tuple[str, str]], file: str) -> list[Problem]:
    problems = []
    for key, variable in keys:
        try:
            secret(variable)
        except SecretError as exc:
            problems.append(Problem(file, key, str(exc)))
    return problems


def _raw_secret_keys(data: object, prefix: str = "") -> Iterator[tuple[str, str]]:
    """`*_env` keys of a plant file that did not validate, read from its YAML as it is."""
    if isinstance(data, dict):
        for name, value in data.items():
            key = f"{prefix}{name}"
            if str(name).endswith("_env") and isinstance(value, str):
                yield key, value
            else:
                yield from _raw_secret_keys(value, f"{key}.")
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _raw_secret_keys(item, f"{prefix}{index}.")


def _secret_keys(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, str]]:
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = f"{prefix}{field.alias or name}"
        if name.endswith("_env") and isinstance(value, str):
            yield key, value
        elif isinstance(value, BaseModel):
            yield from _secret_keys(value, f"{key}.")
        elif isinstance(value, list | dict):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for index, item in items:
                if isinstance(item, BaseModel):
                    yield from _secret_keys(item, f"{key}.{index}.")


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
