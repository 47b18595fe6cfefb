"""Golden folders: each `tests/cases/<name>/` holds YAML files and the exact `validate` output.

A new bug in config validation becomes a new folder. `UPDATE_GOLDEN=1 pytest tests/test_config_cases.py`
rewrites the expected files; review the diff before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plantwatch.config.validate import validate_paths

CASES = Path(__file__).parent / "cases"


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_validate_case(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = CASES / case
    monkeypatch.chdir(folder)
    files = sorted(p.name for p in folder.glob("*.yaml"))
    _, problems = validate_paths([Path(f) for f in files])
    actual = "".join(f"{p}\n" for p in problems)
    expected_file = folder / "expected.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        expected_file.write_text(actual, encoding="utf-8")
    assert actual == expected_file.read_text(encoding="utf-8")
    assert bool(problems) != case.startswith("valid_")  # valid_* cases must stay valid
