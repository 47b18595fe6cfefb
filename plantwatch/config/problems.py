"""Configuration problems: one per offending key, printed as `file: dotted.key.path: message`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from plantwatch.core.errors import PlantwatchError


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


# libyaml's parser when PyYAML was built with it (the wheels are): several times faster to start.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Bounds for one config file: far above any real plant or map, far below what hurts. A few hundred
# bytes of nested aliases ("billion laughs") expand to billions of nodes; they are counted, not built.
MAX_YAML_BYTES = 4 * 2**20
MAX_YAML_NODES = 200_000


def read_yaml(path: Path) -> Any:
    """Load one YAML file, turning I/O, syntax and size errors into a ConfigError naming the file."""
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise ConfigError(
                [Problem(str(path), "", f"{size:,} bytes; a config file may have at most {MAX_YAML_BYTES:,}")]
            )
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(str(path), "", f"cannot read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        problem = Problem(str(path), "", f"not UTF-8 text: {exc.reason} at byte {exc.start}")
        raise ConfigError([problem]) from exc
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        nodes = expanded_node_count(node)
        if nodes > MAX_YAML_NODES:
            raise ConfigError(
                [
                    Problem(
                        str(path),
                        "",
                        f"expands to more than {MAX_YAML_NODES:,} values through anchors and aliases "
                        "(an alias bomb?); write the values out or split the file",
                    )
                ]
            )
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem(str(path), "", f"invalid YAML: {where}{reason}")]) from exc
    except RecursionError as exc:
        raise ConfigError([Problem(str(path), "", "invalid YAML: nested too deeply")]) from exc
    finally:
        loader.dispose()


def expanded_node_count(root: yaml.Node, stop_above: int = MAX_YAML_NODES) -> int:
    """How many nodes the document has once every alias is expanded (stops counting past
    `stop_above`). Linear in the composed graph: each node's expanded size is computed once."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if not children_done:
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        sizes[id(node)] = min(stop_above + 1, 1 + sum(sizes[id(child)] for child in children))
    return sizes[id(root)]
