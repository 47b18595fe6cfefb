"""The HJ 212-2017 uplink against a platform stand-in written from the standard (real TCP on
loopback): the standard's example packet, framing and split packets; minute and hour packets of a
simulated stack carrying its HJ 75 values and flags; a platform outage ending with every record
delivered once and in order; a history request; a corrupted answer; and the section's validation."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from plantwatch.cli import main
from plantwatch.config.plant import load_plant_config
from plantwatch.config.problems import ConfigError
from plantwatch.hj212.crc import crc16
from plantwatch.hj212.errors import PacketError
from plantwatch.hj212.packet import Packet, decode, encode
from plantwatch.hj212.service import Hj212Uplink
from tests.alert_helpers import HOUR_NS, MINUTE_NS, result
from tests.report_data import local_ns
from tests.services.hj212_platform import Platform, crc, parse
from tests.waiting import wait_until_async

EXAMPLE = (  # the standard's own example (HJ 212-2017, Appendix A)
    b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;"
    b"CP=&&RtdInterval=30&&1C80\r\n"
)
MN = "88888880000001A0B1C2D3E4"  # 24 characters
PW = "hj212-s3cret"
H0 = local_ns(2026, 11, 24, 10)  # the first simulated hour starts at 10:00 Beijing time


def modbus_crc(data: bytes) -> int:
    register = 0xFFFF
    for byte in data:
        register ^= byte
        for _ in range(8):
            register = (register >> 1) ^ 0xA001 if register & 1 else register >> 1
    return register


# --- packets ---


def test_the_standards_example_packet_checks() -> None:
    segment = EXAMPLE[6:-6]
    assert len(segment) == 101 and crc16(segment) == 0x1C80 == crc(segment)
    assert modbus_crc(segment) != 0x1C80  # CRC-16/MODBUS is another algorithm
    packet = decode(EXAMPLE)
    assert (packet.qn, packet.st, packet.cn, packet.mn, packet.flag) == (
        "20160801085857223", "32", "1062", "010000A8900016F000169DC0", 5,
    )  # fmt: skip
    assert packet.value("RtdInterval") == "30" and packet.wants_answer
    assert encode(packet) == [EXAMPLE]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (EXAMPLE.replace(b"1C80", b"1C81"), "CRC 1C81 does not match the data segment (1C80)"),
        (EXAMPLE.replace(b"##0101", b"##0102"), "length field says 102"),
        (EXAMPLE[2:], "does not start with ##"),
        (EXAMPLE.replace(b"##0101", b"##01a1"), "is not 4 decimal digits"),
    ],
)
def test_bad_packets_are_refused_with_the_reason(raw: bytes, why: str) -> None:
    with pytest.raises(PacketError, match=why.replace("(", r"\(").replace(")", r"\)")):
        decode(raw)


def test_long_data_is_split_into_numbered_packets_the_platform_can_check() -> None:
    groups = [[("DataTime", "20261124100000")]] + [
        [(f"a{n:05d}-Avg", "123.456"), (f"a{n:05d}-Flag", "N")] for n in range(60)
    ]
    packet = Packet("20261124100000123", "31", "2051", PW, MN, 5, groups)
    parts = encode(packet)
    assert len(parts) >= 2
    read = [parse(part) for part in parts]  # the stand-in's own check: length and CRC
    assert all(len(part) - 12 <= 1024 for part in parts)
    assert [r.fields["PNO"] for r in read] == [str(i + 1) for i in range(len(parts))]
    assert {r.fields["PNUM"] for r in read} == {str(len(parts))} and {r.fields["Flag"] for r in read} == {"7"}
    assert all(r.groups[0] == {"DataTime": "20261124100000"} for r in read)
    items = {k for r in read for g in r.groups[1:] for k in g}
    assert len(items) == 120  # every item, once


def test_decode_command_prints_fields_and_fails_on_a_bad_crc(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hj212", "decode", EXAMPLE.decode().strip()]) == 0
    out = capsys.readouterr().out
    assert "CN   1062" in out and "Flag 5 (HJ 212-2017, answer wanted)" in out and "RtdInterval=30" in out
    assert main(["hj212", "decode", EXAMPLE.decode().strip().replace("1C80", "0759")]) == 1
    assert "CRC 0759 does not match the data segment (1C80)" in capsys.readouterr().err


# --- the uplink over TCP ---


@pytest.fixture
def platform() -> Iterator[Platform]:
    server = Platform()
    server.start()
    yield server
    server.stop()


def write_plant(folder: Path, port: int, minute: str = "10m", *, extra: str = "") -> Path:
    config = folder / "plant.yaml"
    config.write_text(
        f"""
plant: {{id: works, name: 西宁铁合金厂}}
devices:
  - {{id: stack-1, map: dust_cems, url: "tcp://127.0.0.1:1", interval: 1m}}
alerts:
  o2_reference: {{stack-1: 11}}
hj212:
  lateness: 1s
  platforms:
    - {{name: province, host: 127.0.0.1, port: {port}, mn: {MN}, pw_env: PW_HJ212, timeout: 1s,
       retries: 1, reconnect: 1s, devices: [stack-1],
       data: {{realtime: null, minute: {minute}, hour: true, day: false}}}}
{extra}""",
        encoding="utf-8",
    )
    return config


@pytest.fixture(autouse=True)
def password() -> Iterator[None]:
    os.environ["PW_HJ212"] = PW
    yield
    os.environ.pop("PW_HJ212", None)


def minute(uplink: Hj212Uplink, ts: int, dust: float, flag: str = "N") -> None:
    uplink.handle(
        result("stack-1", ts, dust=dust, so2=80.0, nox=150.0, o2=13.0, flue_flow=360000.0,
               flue_temperature=135.0, data_flag=flag)
    )  # fmt: skip


async def running(uplink: Hj212Uplink, scenario: Callable[[], object]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(uplink.run(stop))
    try:
        result = scenario()
        if asyncio.iscoroutine(result):
            await result
    finally:
        stop.set()
        await task
        uplink.close()


def two_hours(uplink: Hj212Uplink) -> None:
    """10:00-11:00: dust 40 (x 10/8 = 50.0 O2-corrected) for 50 minutes, calibration 4, maintenance
    6 (valid); 11:00-12:00: 44 (55.0) for 40 minutes, maintenance 20 (fewer than 45: flag M); then
    the first minute of 12:00, which closes 11:00."""
    for m in range(60):
        minute(uplink, H0 + m * MINUTE_NS, 40.0, "N" if m < 50 else "C" if m < 54 else "M")
    for m in range(60):
        minute(uplink, H0 + HOUR_NS + m * MINUTE_NS, 44.0, "N" if m < 40 else "M")
    minute(uplink, H0 + 2 * HOUR_NS, 20.0)


def test_minute_and_hour_packets_carry_the_hj75_values_and_flags(tmp_path: Path, platform: Platform) -> None:
    uplink = Hj212Uplink(load_plant_config(write_plant(tmp_path, platform.port)))

    async def scenario() -> None:
        two_hours(uplink)
        await wait_until_async(
            lambda: len(platform.data("2061")) == 2 and len(platform.data("2051")) == 12, 30
        )

    asyncio.run(running(uplink, scenario))
    assert platform.bad == []
    hours = [p.cp() for p in platform.data("2061")]
    first, second = hours
    assert first["DataTime"] == "20261124100000" and second["DataTime"] == "20261124110000"
    assert (first["a34013-Avg"], first["a34013-ZsAvg"], first["a34013-Flag"]) == ("40", "50", "N")
    assert (second["a34013-Avg"], second["a34013-ZsAvg"], second["a34013-Flag"]) == ("44", "55", "M")
    assert first["a19001-Avg"] == "13" and first["a00000-Avg"] == "100"  # 360,000 m³/h = 100 m³/s
    assert float(first["a00000-Cou"]) == pytest.approx(50 * 60 * 100)  # m³ over the 50 valid minutes
    assert float(first["a34013-Cou"]) == pytest.approx(50 * 60 * 100 * 40 * 1e-6)  # kg, as measured
    assert "a21026-ZsAvg" in first and "a01012-ZsAvg" not in first
    minutes = [p.cp() for p in platform.data("2051")]
    assert [m["DataTime"][8:12] for m in minutes] == [f"{h}{m}0" for h in ("10", "11") for m in range(6)]
    assert (minutes[4]["a34013-Avg"], minutes[4]["a34013-Flag"]) == ("40", "N")  # 10:40-10:50
    assert minutes[5]["a34013-Flag"] == "M" and "a34013-Avg" not in minutes[5]  # 10:50: C 4, M 6
    for packet in platform.data("2061") + platform.data("2051"):
        f = packet.fields
        assert (f["ST"], f["PW"], f["MN"], f["Flag"]) == ("31", PW, MN, "5")
        assert len(f["QN"]) == 17


def test_an_outage_ends_with_every_record_delivered_once_in_order(tmp_path: Path, platform: Platform) -> None:
    uplink = Hj212Uplink(load_plant_config(write_plant(tmp_path, platform.port, minute="1m")))

    async def scenario() -> None:
        for m in range(5):
            minute(uplink, H0 + m * MINUTE_NS, 30.0)
        await wait_until_async(lambda: len(platform.data("2051")) == 4, 30)
        platform.stop()  # ten minutes of the stack's data go out while the platform is away
        await wait_until_async(lambda: not uplink.links[0].connected, 30)
        for m in range(5, 16):
            minute(uplink, H0 + m * MINUTE_NS, 30.0 + m)
        assert uplink.links[0].backlog() == 11
        platform.start()
        await wait_until_async(lambda: len(platform.data("2051")) == 15, 30)
        await wait_until_async(lambda: uplink.links[0].backlog() == 0, 30)

    asyncio.run(running(uplink, scenario))
    times = [p.cp()["DataTime"] for p in platform.data("2051")]
    assert times == [f"2026112410{m:02d}00" for m in range(15)]  # each once, in order
    assert len(times) == len(set(times)) == 15
    assert [p.cp()["a34013-Avg"] for p in platform.data("2051")][5:] == [str(30 + m) for m in range(5, 15)]


def test_a_history_request_is_answered_and_a_bad_password_refused(tmp_path: Path, platform: Platform) -> None:
    uplink = Hj212Uplink(load_plant_config(write_plant(tmp_path, platform.port)))

    async def scenario() -> None:
        two_hours(uplink)
        await wait_until_async(lambda: len(platform.data("2061")) == 2, 30)
        platform.received.clear()
        request = (
            "QN=20261124130000001;ST=31;CN=2061;PW={pw};MN={mn};Flag=5;"
            "CP=&&BeginTime=20261124100000;EndTime=20261124110000&&"
        )
        platform.send(request.format(pw=PW, mn=MN))
        await wait_until_async(lambda: platform.data("9012"), 30)
        platform.send(request.format(pw="wrong", mn=MN).replace("001;", "002;"))
        await wait_until_async(lambda: len(platform.data("9011")) == 2, 30)

    asyncio.run(running(uplink, scenario))
    answered = [p for p in platform.received if p.fields["QN"] == "20261124130000001"]
    assert [p.cn for p in answered] == ["9011", "2061", "2061", "9012"]
    assert answered[0].cp() == {"QnRtn": "1"} and answered[-1].cp() == {"ExeRtn": "1"}
    assert [p.cp()["DataTime"] for p in answered[1:3]] == ["20261124100000", "20261124110000"]
    assert answered[1].cp()["a34013-ZsAvg"] == "50"
    refused = [p for p in platform.received if p.fields["QN"] == "20261124130000002"]
    assert [(p.cn, p.cp()) for p in refused] == [("9011", {"QnRtn": "3"})]  # wrong password


def test_a_corrupted_answer_is_ignored_and_the_record_resent(tmp_path: Path, platform: Platform) -> None:
    platform.corrupt_answers = 1
    uplink = Hj212Uplink(load_plant_config(write_plant(tmp_path, platform.port, minute="1m")))

    async def scenario() -> None:
        for m in range(3):
            minute(uplink, H0 + m * MINUTE_NS, 30.0)
        await wait_until_async(lambda: uplink.links[0].backlog() == 0 and len(platform.data("2051")) >= 2, 30)

    asyncio.run(running(uplink, scenario))
    link = uplink.links[0]
    assert link.bad_packets == 1 and link.resent == 1
    times = [p.cp()["DataTime"] for p in platform.data("2051")]
    assert times == ["20261124100000", "20261124100000", "20261124100100"]  # the first sent twice


# --- validation ---


def test_validate_names_the_bad_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_plant(tmp_path, 9)
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace(MN, "ABC12").replace("devices: [stack-1]", "devices: [stack-1, stack-9]"),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_plant_config(config)
    said = "\n".join(str(p) for p in caught.value.problems)
    assert "hj212.platforms.0.mn" in said and "is 24 hex digits: 'ABC12'" in said
    assert "hj212.platforms.0.devices" in said and "one MN identifies one monitoring point" in said
    maps = tmp_path / "cems.yaml"
    maps.write_text(
        (Path(__file__).parents[1] / "plantwatch/device_maps/dust_cems.yaml")
        .read_text(encoding="utf-8")
        .replace("role: dust_concentration}", "role: dust_concentration, hj212: a99999}"),
        encoding="utf-8",
    )
    config.write_text(
        text.replace("map: dust_cems", f"map: {maps}").replace("devices: [stack-1]", "devices: [stack-9]"),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_plant_config(config)
    said = "\n".join(str(p) for p in caught.value.problems)
    assert "'a99999' is not a pollutant code plantwatch knows" in said
    config.write_text(text.replace("devices: [stack-1]", "devices: [stack-9]"), encoding="utf-8")
    with pytest.raises(ConfigError, match="no device 'stack-9'"):
        load_plant_config(config)
    os.environ.pop("PW_HJ212")
    config.write_text(text, encoding="utf-8")
    assert main(["validate", str(config)]) == 1
    assert "hj212.platforms.0.pw_env: environment variable PW_HJ212" in capsys.readouterr().out
    config.write_text(text.replace(MN, "ABC12"), encoding="utf-8")  # the secret beside other problems
    assert main(["validate", str(config)]) == 1
    said = capsys.readouterr().out
    assert (
        "hj212.platforms.0.mn" in said and "hj212.platforms.0.pw_env: environment variable PW_HJ212" in said
    )
    config.write_text(text.replace(MN, "010000000000000000000017"), encoding="utf-8")  # YAML: a number
    with pytest.raises(ConfigError, match="write the MN in quotes: YAML read it as the number"):
        load_plant_config(config)


def test_a_restart_mid_hour_continues_the_hour(tmp_path: Path, platform: Platform) -> None:
    config = write_plant(tmp_path, platform.port)
    before = Hj212Uplink(load_plant_config(config))
    for m in range(30):  # 10:00-10:30 at 30 mg/m³, then plantwatch stops
        minute(before, H0 + m * MINUTE_NS, 30.0)
    before.close()
    after = Hj212Uplink(load_plant_config(config))

    async def scenario() -> None:
        for m in range(30, 61):  # 10:30-11:00 at 50 mg/m³ after the restart, and 11:00
            minute(after, H0 + m * MINUTE_NS, 50.0)
        await wait_until_async(lambda: platform.data("2061"), 30)

    asyncio.run(running(after, scenario))
    [hour] = [p.cp() for p in platform.data("2061")]
    assert (hour["a34013-Avg"], hour["a34013-Flag"]) == ("40", "N")  # all 60 minutes, both runs
    assert [p.cp()["DataTime"][8:12] for p in platform.data("2051")] == [
        "1000",
        "1010",
        "1020",
        "1030",
        "1040",
        "1050",
    ]


def test_platform_names_differ(tmp_path: Path) -> None:
    config = write_plant(tmp_path, 9)
    text = config.read_text(encoding="utf-8")
    entry = text[text.index("    - {name: province") :]
    config.write_text(text + entry, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"platform names must differ .*: province"):
        load_plant_config(config)


def test_a_late_reading_after_a_silent_close_is_dropped_not_counted_twice(tmp_path: Path) -> None:
    now = [H0]
    uplink = Hj212Uplink(load_plant_config(write_plant(tmp_path, 9)), clock=lambda: now[0])
    for m in range(44):  # 10:00-10:44 valid, then the stack goes silent
        minute(uplink, H0 + m * MINUTE_NS, 50.0)
    now[0] += 5 * MINUTE_NS  # silent: the timer closes 10:43
    uplink.tick()
    minute(uplink, H0 + 43 * MINUTE_NS + 30 * 10**9, 90.0)  # a late sample of the closed 10:43
    minute(uplink, H0 + 2 * HOUR_NS, 20.0)  # 12:00 closes the hours
    stack = uplink.stacks["stack-1"]
    assert stack.late == 1
    hours = uplink.store.history(["stack-1"], "2061", 3600, H0, H0)
    cp = {k: v for group in hours[0].cp for k, v in group}
    assert (cp["a34013-Avg"], cp["a34013-Flag"]) == ("50", "B")  # 44 valid minutes: not valid
    assert float(cp["a00000-Cou"]) == pytest.approx(44 * 60 * 100)
    uplink.close()


def test_unknown_cems_flags_are_not_valid_samples(tmp_path: Path) -> None:
    uplink = Hj212Uplink(load_plant_config(write_plant(tmp_path, 9, minute="1m")))
    minute(uplink, H0, 30.0, "n")  # lower case: the standard's N
    minute(uplink, H0 + MINUTE_NS, 30.0, "0")  # none of the standard's flags
    minute(uplink, H0 + 2 * MINUTE_NS, 30.0)
    records = uplink.store.history(["stack-1"], "2051", 60, H0, H0 + MINUTE_NS)
    flags = [{k: v for g in r.cp for k, v in g}["a34013-Flag"] for r in records]
    assert flags == ["N", "D"] and uplink.stacks["stack-1"].unknown_flags == 1
    uplink.close()


def test_a_crash_of_the_timer_never_doubles_the_links(tmp_path: Path, platform: Platform) -> None:
    uplink = Hj212Uplink(load_plant_config(write_plant(tmp_path, platform.port, minute="1m")))
    prune, calls = uplink.store.prune, [0]

    def failing_once(before_ns: int) -> int:
        calls[0] += 1
        if calls[0] == 2:
            raise sqlite3.OperationalError("disk I/O error")
        return prune(before_ns)

    uplink.store.prune = failing_once  # type: ignore[method-assign]

    async def scenario() -> None:
        await wait_until_async(lambda: calls[0] >= 3 and uplink.links[0].connected, 30)
        for m in range(6):
            minute(uplink, H0 + m * MINUTE_NS, 30.0)
        await wait_until_async(lambda: uplink.links[0].backlog() == 0 and len(platform.data("2051")) >= 5, 30)

    asyncio.run(running(uplink, scenario))
    times = [p.cp()["DataTime"] for p in platform.data("2051")]
    assert times == sorted(set(times)) and len(times) == 5  # each minute once: one set of links
