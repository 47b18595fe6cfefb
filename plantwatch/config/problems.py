"""Configuration problems: one per offending key, printed as `file: dotted.key.path: message`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from plantwatch.errors import PlantwatchError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one key of one file."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return f"{where}: {self.message}"


class ConfigError(PlantwatchError):
    """A configuration file is invalid; `problems` lists every offending key."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def dotted(loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic location such as ('registers', 3, 'type') into 'registers.3.type'."""
    return ".".join(str(part) for part in loc)


def problems_from_validation(file: str, exc: ValidationError, prefix: str = "") -> list[Problem]:
    """Convert a pydantic ValidationError into Problems pointing at the offending keys."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(part for part in err["loc"] if not _is_union_tag(part))
        path = dotted(loc)
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif err["type"] not in {"missing", "value_error"} and "input" in err:
            message = f"{message} (got {_short(err['input'])})"
        problems.append(Problem(file, path, message))
    return problems


def _is_union_tag(part: int | str) -> bool:
    """Pydantic inserts type names like 'function-after[...]' into locations; drop them."""
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_yaml(path: Path) -> Any:
    """Load one YAML file, turning I/O and syntax errors into a ConfigError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(str(path), "", f"cannot read: {exc.strerror}")]) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem(str(path), "", f"invalid YAML: {where}{reason}")]) from exc
