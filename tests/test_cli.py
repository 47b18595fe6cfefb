"""The `plantwatch` command as a user runs it: separate processes, real sockets on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services.processes import free_port, wait_for_port
from tests.waiting import wait_until

REPO = Path(__file__).parent.parent


def plantwatch(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plantwatch", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def simulated_plant(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """`plantwatch simulate` in its own process: a ferrosilicon SAF and a CEMS on two free ports."""
    saf_port, cems_port = free_port(), free_port()
    config = tmp_path / "plant.yaml"
    config.write_text(
        f"""plant: {{id: test, name: Test}}
devices:
  - {{id: saf-1, map: saf_ferrosilicon, url: "tcp://127.0.0.1:{saf_port}", unit: 1}}
  - {{id: cems-1, map: dust_cems, url: "tcp://127.0.0.1:{cems_port}", unit: 4}}
""",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "plantwatch",
            "simulate",
            "--config",
            str(config),
            "--seed",
            "7",
            "--speed",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(saf_port)
        wait_for_port(cems_port)
        yield saf_port, cems_port
    finally:
        proc.terminate()
        proc.wait(10)


def test_validate_ok_and_broken(tmp_path: Path) -> None:
    ok = plantwatch("validate", str(REPO / "device_maps"), str(REPO / "tests" / "cases" / "valid_plant"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout == "16 file(s) valid\n"  # 14 shipped maps, a plant and its local map
    assert ok.stderr == ""

    broken = tmp_path / "saf.yaml"
    broken.write_text(
        "model: saf\ndescription: d\nsector: ferroalloy\nprotocol: modbus\n"
        "registers:\n  - {name: p, address: 0, type: float32, bit: 1}\n  - {name: q, address: 1}\n",
        encoding="utf-8",
    )
    bad = plantwatch("validate", str(broken))
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == [
        f"{broken}: registers.0: 'p': `bit` is only legal with type bool in a register table, "
        "not type float32 in table holding",
        "1 problem(s) in 1 file(s)",
    ]


def test_targets_json_speaks_the_config_keys_and_a_closed_pipe_is_not_an_error() -> None:
    listed = plantwatch("targets", "--json")
    assert listed.returncode == 0, listed.stderr
    fesi = next(t for t in json.loads(listed.stdout) if t["id"] == "ferroalloy-fesi-unit-power")
    assert "for" in fesi and "for_" not in fesi  # as `alerts.targets.<id>` spells it
    assert fesi["numerator"] == [{"role": "energy_counter", "carrier": "electricity"}]

    # `plantwatch targets | head -1` where head has gone: no reader at all, so the first write fails
    proc = subprocess.Popen(
        [sys.executable, "-m", "plantwatch", "targets"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(30) == 141 and err == ""  # as a Unix tool killed by SIGPIPE, without a traceback


def test_help_says_which_commands_log_at_info() -> None:
    from plantwatch.cli import SERVICES

    text = " ".join(plantwatch("--help").stdout.split())
    assert f"default: INFO for {', '.join(SERVICES)}; WARNING otherwise" in text
    assert set(SERVICES) == {"collect", "run", "alerts"}  # the long-running services


def probe_cems(port: int) -> dict[str, Any]:
    """`plantwatch probe --json` of the simulated CEMS (unit 4), allowing its clock 10 s ahead."""
    url = f"tcp://127.0.0.1:{port}"
    result = plantwatch(
        "probe", "--map", "dust_cems", "--url", url, "--unit", "4", "--json", "--max-skew", "10s"
    )
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_probe_json_reads_scaled_values_with_quality(simulated_plant: tuple[int, int]) -> None:
    saf_port, cems_port = simulated_plant
    result = plantwatch(
        "probe", "--map", "saf_ferrosilicon", "--url", f"tcp://127.0.0.1:{saf_port}", "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"values", "units", "quality", "timestamp_ns"}
    assert set(data["quality"].values()) == {"good"}
    values, units = data["values"], data["units"]
    assert 25_000 < values["active_power"] < 35_000 and units["active_power"] == "kW"
    assert 90 < values["electrode_current_a"] < 100 and units["electrode_current_a"] == "kA"
    assert values["active_energy"] >= 12_345_678 and isinstance(values["active_energy"], int)
    assert values["furnace_running"] is True and values["cooling_alarm"] is False

    cems = plantwatch(
        *("probe", "--map", "dust_cems", "--url", f"tcp://127.0.0.1:{cems_port}", "--unit", "4", "--json"),
        *("--max-skew", "30d"),  # the simulated CEMS clock runs at 60x
    )
    cems_values = json.loads(cems.stdout)["values"]
    assert 15 < cems_values["dust"] < 80 and cems_values["data_flag"] in ("N", "M")
    stamps = set(json.loads(cems.stdout)["timestamp_ns"].values())
    assert len(stamps) == 1 and stamps.pop() > time.time_ns()  # the device clock, ahead at 60x

    # a clock that ran further ahead than --max-skew marks every value of the poll bad
    wait_until(
        lambda: probe_cems(cems_port)["quality"]["dust"].startswith("bad timestamp"), 30, "clock ahead"
    )
    ahead = probe_cems(cems_port)
    assert {q.split(":")[0] for q in ahead["quality"].values()} == {"bad timestamp"}
    assert set(ahead["values"].values()) == {None}


def test_probe_table_and_wrong_unit(simulated_plant: tuple[int, int]) -> None:
    _, cems_port = simulated_plant
    table = plantwatch(
        *("probe", "--map", "dust_cems", "--url", f"tcp://127.0.0.1:{cems_port}", "--unit", "4"),
        *("--max-skew", "30d"),  # the simulated CEMS clock runs at 60x
    )
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["field", "value", "unit", "quality"]
    assert lines[1].split()[0] == "dust" and lines[1].split()[-2:] == ["mg/m3", "good"]
    assert "1 request(s)" in table.stdout

    # pymodbus 3.16's simulator answers an unknown unit with a server-side error; either way
    # the probe must report bad quality on every value and exit 3.
    wrong = plantwatch(
        "probe",
        "--map",
        "dust_cems",
        "--url",
        f"tcp://127.0.0.1:{cems_port}",
        "--unit",
        "9",
        "--timeout",
        "300ms",
        "--json",
    )
    assert wrong.returncode == 3
    qualities = set(json.loads(wrong.stdout)["quality"].values())
    assert qualities and "good" not in qualities


def test_probe_dead_device_exits_3_with_reason() -> None:
    port = free_port()
    result = plantwatch(
        "probe", "--map", "dust_cems", "--url", f"tcp://127.0.0.1:{port}", "--timeout", "300ms", "--json"
    )
    assert result.returncode == 3
    data = json.loads(result.stdout)
    assert set(data["quality"].values()) == {f"cannot connect to tcp://127.0.0.1:{port}"}
    assert set(data["values"].values()) == {None}


def test_probe_with_bad_arguments_names_the_problem() -> None:
    result = plantwatch("probe", "--map", "no_such_map", "--url", "tcp://127.0.0.1:1")
    assert result.returncode == 1
    assert result.stderr.startswith("--map: 'no_such_map' is not a shipped model (aluminium_potline, ")
    assert "Traceback" not in result.stderr
    result = plantwatch("probe", "--map", "dust_cems", "--url", "udp://127.0.0.1:1")
    assert result.returncode == 1
    assert result.stderr == "--url: 'udp://127.0.0.1:1': scheme must be tcp://, rtu+tcp:// or serial://\n"
