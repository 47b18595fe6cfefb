"""The layers hold (docs/architecture.md): import-linter's contracts in pyproject.toml pass on the
code, and fail on a copy of it with one import against the flow added."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the `plantwatch` package found first under `root`."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_code_keeps_every_layer_contract() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_an_import_against_the_flow_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(
        REPO / "plantwatch", tmp_path / "plantwatch", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    scheduler = tmp_path / "plantwatch" / "collector" / "scheduler.py"
    scheduler.write_text(
        scheduler.read_text() + "\nfrom plantwatch.alerts.service import AlertService  # a back-edge\n"
    )
    result = lint_imports(tmp_path)
    assert result.returncode == 1
    assert "each layer imports only the layers below it BROKEN" in result.stdout
    assert "plantwatch.collector.scheduler -> plantwatch.alerts.service" in result.stdout
