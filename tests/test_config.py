"""Device maps and plant configs: the shipped set, defaults, durations, endpoints."""

from __future__ import annotations

import time
from pathlib import Path
from typing import get_args

import pytest

from plantwatch.config.device_map import DeviceMap, parse_device_map
from plantwatch.config.plant import parse_endpoint
from plantwatch.config.problems import MAX_YAML_BYTES, ConfigError, read_yaml
from plantwatch.config.roles import Sector
from plantwatch.config.validate import validate_paths
from plantwatch.core.durations import parse_duration

REPO = Path(__file__).parent.parent


def test_every_shipped_map_is_valid_and_every_sector_is_covered(shipped_maps: dict[str, DeviceMap]) -> None:
    files, problems = validate_paths([REPO / "device_maps"])
    assert problems == []
    assert len(files) == 14  # 12 Modbus, 2 MQTT
    assert {m.sector for m in shipped_maps.values()} == set(get_args(Sector))
    assert {m.product for m in shipped_maps.values() if m.sector == "ferroalloy"} == {
        "ferrosilicon",
        "ferrochrome",
        "ferronickel",
    }
    assert {m.model for m in shipped_maps.values() if m.protocol == "mqtt"} == {
        "cems_json",
        "furnace_sparkplug",
    }
    assert {m.product for m in shipped_maps.values() if m.sector == "steel"} == {
        "eaf_steel",
        "coke",
        "sinter",
        None,  # the works' utilities logger (water, slag): read with the furnaces as a group
    }
    for device_map in shipped_maps.values():
        assert device_map.source and "generic layout" in device_map.source


def test_defaults_apply_to_every_register_and_registers_override_them() -> None:
    device_map = parse_device_map(
        {
            "model": "m",
            "description": "d",
            "sector": "steel",
            "protocol": "modbus",
            "defaults": {"table": "input", "type": "uint32", "byte_order": "CDAB", "counter": {"bits": 32}},
            "registers": [
                {"name": "a", "address": 0},
                {"name": "b", "address": 2, "type": "float32", "counter": None, "table": "holding"},
            ],
        },
        "m.yaml",
    )
    a, b = device_map.registers
    assert (a.table, a.type, a.byte_order, a.counter and a.counter.bits) == ("input", "uint32", "CDAB", 32)
    assert (b.table, b.type, b.byte_order, b.counter) == ("holding", "float32", "CDAB", None)


def test_a_default_that_breaks_a_register_names_the_register() -> None:
    with pytest.raises(ConfigError) as info:
        parse_device_map(
            {
                "model": "m",
                "description": "d",
                "sector": "steel",
                "protocol": "modbus",
                "defaults": {"scale": 0.1},
                "registers": [
                    {"name": "ok", "address": 0},
                    {"name": "flag", "address": 1, "type": "bool", "bit": 0},
                ],
            },
            "m.yaml",
        )
    assert [str(p) for p in info.value.problems] == [
        "m.yaml: registers.1: 'flag': `scale`/`offset` are illegal with type bool"
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("1s", 1.0),
        ("1m", 60.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1.5s", 1.5),
        (3, 3.0),
        ("10", 10.0),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "fast", "1w", "-1s", "0s", True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_endpoints() -> None:
    tcp = parse_endpoint("tcp://10.0.0.7:1502")
    assert (tcp.kind, tcp.host, tcp.port, tcp.bus_key) == ("tcp", "10.0.0.7", 1502, "tcp://10.0.0.7:1502")
    assert parse_endpoint("tcp://meter.local").port == 502
    assert parse_endpoint("rtu+tcp://gw:4001").kind == "rtu+tcp"
    serial = parse_endpoint("serial:///dev/ttyUSB0?baudrate=19200&parity=e&stopbits=2")
    assert (serial.path, serial.baudrate, serial.parity, serial.stopbits, serial.bytesize) == (
        "/dev/ttyUSB0",
        19200,
        "E",
        2,
        8,
    )
    assert serial.bus_key == "serial:///dev/ttyUSB0"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("modbus://x:502", "scheme must be"),
        ("tcp://:502", "has no host"),
        ("tcp://x:99999", "invalid port"),
        ("tcp://x:502/path", "takes no path"),
        ("serial:///dev/ttyS0?baud=9600", "unknown serial option(s) baud"),
        ("serial:///dev/ttyS0?stopbits=3", "stopbits must be 1 or 2"),
        ("serial:///dev/ttyS0?baudrate=fast", "are integers"),
    ],
)
def test_bad_endpoints(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_endpoint(url)


def test_validate_reports_missing_paths_and_walks_folders(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.yaml").write_text("model: y\n", encoding="utf-8")
    files, problems = validate_paths([tmp_path, tmp_path / "nope.yaml"])
    assert files == [tmp_path / "sub" / "x.yaml"]
    assert str(problems[0]) == f"{tmp_path / 'nope.yaml'}: no such file or folder"
    assert f"{tmp_path / 'sub' / 'x.yaml'}: model: 'y' must equal the file name 'x'" not in map(str, problems)
    assert f"{tmp_path / 'sub' / 'x.yaml'}: description: Field required" in map(str, problems)


def test_modbus_readme_embeds_the_sample_config_verbatim() -> None:
    """Like Telegraf: the sample config is the source of truth and the README may not drift."""
    folder = REPO / "plantwatch" / "collector" / "modbus"
    sample = (folder / "sample.plant.yaml").read_text(encoding="utf-8")
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert f"```yaml\n{sample}```" in readme


def test_the_docs_list_every_role() -> None:
    from plantwatch.config.roles import Role

    doc = (REPO / "docs" / "device-maps.md").read_text(encoding="utf-8")
    for role in Role:
        assert f"| `{role.value}` |" in doc, role


def test_influx_readme_embeds_its_sample_and_the_sample_is_valid() -> None:
    import yaml

    from plantwatch.config.plant import BufferConfig, InfluxConfig

    folder = REPO / "plantwatch" / "infra" / "influx"
    sample = (folder / "sample.influx.yaml").read_text(encoding="utf-8")
    assert f"```yaml\n{sample}```" in (folder / "README.md").read_text(encoding="utf-8")
    data = yaml.safe_load(sample)
    assert InfluxConfig.model_validate(data["influx"]).api == "v1"
    assert BufferConfig.model_validate(data["buffer"]).max_size == 1_000_000_000


@pytest.mark.parametrize(
    ("influx", "message"),
    [
        ({"url": "http://x", "api": "v2"}, "api v2 needs `bucket`"),
        ({"url": "http://x", "api": "v1"}, "api v1 needs `database`"),
        (
            {"url": "http://x", "api": "v1", "database": "d", "bucket": "b"},
            "`org` and `bucket` belong to api v2",
        ),
        ({"url": "influx:8086", "bucket": "b"}, "String should match pattern"),
        ({"url": "http://x", "bucket": "b", "token": "s3cret"}, "unknown key"),
    ],
)
def test_influx_section_problems_name_the_key(influx: dict[str, object], message: str) -> None:
    from plantwatch.config.plant import parse_plant_config

    with pytest.raises(ConfigError) as info:
        parse_plant_config({"plant": {"id": "p", "name": "P"}, "influx": influx}, "plant.yaml", REPO)
    (problem,) = info.value.problems
    assert problem.path.startswith("influx") and message in problem.message
    assert "s3cret" not in str(info.value)  # a secret pasted into the file is never echoed


def test_device_tags_that_influxdb_cannot_store_are_rejected() -> None:
    from plantwatch.config.plant import parse_plant_config

    devices = [
        {"id": "a", "map": "dust_cems", "url": "tcp://h:502", "unit": 1, "tags": {"line": "north\nsouth"}},
        {"id": "b", "map": "dust_cems", "url": "tcp://h:502", "unit": 2, "tags": {"device": "x"}},
        {"id": "c", "map": "dust_cems", "url": "tcp://h:502", "unit": 3, "tags": {"Zone": "x"}},
        {"id": "d", "map": "dust_cems", "url": "tcp://h:502", "unit": 4, "tags": {"zone": "炉 1, east=2"}},
    ]
    with pytest.raises(ConfigError) as info:
        parse_plant_config({"plant": {"id": "p", "name": "P"}, "devices": devices}, "plant.yaml", REPO)
    assert [(p.path, p.message) for p in info.value.problems] == [
        ("devices.0.tags", "tag line: value 'north\\nsouth' has a newline, control character or backslash"),
        ("devices.1.tags", "tag key 'device' is set by plantwatch itself"),
        ("devices.2.tags", "tag key 'Zone' must be lowercase letters, digits and _"),
    ]


def test_mqtt_readme_embeds_its_sample_and_the_sample_is_valid() -> None:
    import yaml

    from plantwatch.config.plant import parse_plant_config

    folder = REPO / "plantwatch" / "collector" / "mqtt"
    sample = (folder / "sample.mqtt.yaml").read_text(encoding="utf-8")
    assert f"```yaml\n{sample}```" in (folder / "README.md").read_text(encoding="utf-8")
    data = yaml.safe_load(sample) | {"plant": {"id": "works", "name": "Works"}}
    plant = parse_plant_config(data, "plant.yaml", REPO)
    assert plant.config.mqtt is not None and plant.config.mqtt.session_expiry == 86400
    assert [plant.maps[d.id].model for d in plant.config.devices] == ["cems_json", "furnace_sparkplug"]


@pytest.mark.parametrize(
    ("written", "version"), [("", "5"), ("protocol_version: 5", "5"), ("protocol_version: 3.1.1", "3.1.1")]
)
def test_mqtt_protocol_version_as_yaml_writes_it(written: str, version: str) -> None:
    import yaml

    from plantwatch.config.plant import parse_plant_config

    text = f"plant: {{id: works, name: Works}}\nmqtt:\n  url: mqtt://127.0.0.1:1883\n  {written}\n"
    plant = parse_plant_config(yaml.safe_load(text), "plant.yaml", REPO)
    assert plant.config.mqtt is not None and plant.config.mqtt.protocol_version == version


def test_an_alias_bomb_is_rejected_at_once_and_plain_aliases_still_work(tmp_path: Path) -> None:
    """600 bytes of nested aliases expand to 9**12 values: counted on the composed graph, never built."""
    levels = ["a: &a [" + ",".join(['"lol"'] * 9) + "]"]
    levels += [
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(11)
    ]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(levels) + "\n", encoding="utf-8")
    assert bomb.stat().st_size < 700
    started = time.monotonic()
    _, problems = validate_paths([bomb])
    assert time.monotonic() - started < 2  # minutes and gigabytes before the bound
    assert [p.message.split(" (")[0] for p in problems] == [
        "expands to more than 200,000 values through anchors and aliases"
    ]

    shared = tmp_path / "m.yaml"  # anchors as integrators use them: a few, reused
    shared.write_text(
        "model: m\ndescription: d\nsector: ferroalloy\nprotocol: modbus\n"
        "registers:\n  - &power {name: p1, address: 0, type: float32, unit: kW}\n"
        "  - {<<: *power, name: p2, address: 2}\n",
        encoding="utf-8",
    )
    assert validate_paths([shared])[1] == []


def test_a_config_file_over_the_size_bound_is_refused_unread(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    huge.write_text("# " + "x" * (MAX_YAML_BYTES + 10), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"huge.yaml: [\d,]+ bytes; a config file may have at most"):
        read_yaml(huge)
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 5000 + "]" * 5000, encoding="utf-8")  # libyaml stops at 1000 levels
    with pytest.raises(ConfigError, match=r"deep\.yaml: invalid YAML: .*(maximum nesting depth|too deeply)"):
        read_yaml(deep)


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("20s", "a rolling window of 20s is too short: rolling windows are kept in one-minute buckets"),
        ("fortnight", "'fortnight' is not tap, live, shift, day, month, year or a duration"),
    ],
)
def test_a_target_window_too_short_or_unknown_names_the_key(window: str, message: str) -> None:
    from plantwatch.config.plant import parse_plant_config

    config = {
        "plant": {"id": "p", "name": "P"},
        "alerts": {"targets": {"cement-clinker-energy": {"window": window}}},
    }
    with pytest.raises(ConfigError) as info:
        parse_plant_config(config, "plant.yaml", REPO)
    (problem,) = info.value.problems
    assert problem.path == "alerts.targets.cement-clinker-energy.window" and message in problem.message


@pytest.mark.parametrize(
    ("window", "zh", "en"),
    [
        ("24h", "滚动24小时", "rolling 24 h"),
        ("30m", "滚动30分钟", "rolling 30 min"),
        ("90s", "滚动90秒", "rolling 90 s"),
    ],
)
def test_rolling_windows_are_named_in_their_largest_whole_unit(window: str, zh: str, en: str) -> None:
    from dataclasses import replace

    from plantwatch.config.alerts import AlertsConfig
    from plantwatch.config.targets import resolve_targets
    from plantwatch.config.wording import window_name

    [kiln] = [t for t in resolve_targets(AlertsConfig(), "plant.yaml") if t.id == "cement-clinker-energy"]
    rolling = replace(kiln, window=window)
    assert (window_name(rolling, rolling.id, "zh"), window_name(rolling, rolling.id, "en")) == (zh, en)


def test_a_calendar_year_window_is_named_not_parsed_as_a_duration() -> None:
    from dataclasses import replace

    from plantwatch.config.alerts import AlertsConfig
    from plantwatch.config.targets import resolve_targets
    from plantwatch.config.wording import window_name

    config = AlertsConfig.model_validate({"targets": {"cement-clinker-energy": {"window": "year"}}})
    [kiln] = [t for t in resolve_targets(config, "plant.yaml") if t.id == "cement-clinker-energy"]
    assert kiln.window == "year"
    assert (window_name(kiln, kiln.id, "zh"), window_name(replace(kiln), kiln.id, "en")) == ("年", "year")
