"""Plant config schema (`plant.yaml`): the plant, its devices, their endpoints and poll intervals."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from plantwatch.config.alerts import AlertsConfig
from plantwatch.config.device_map import (
    AnyDeviceMap,
    DeviceMap,
    load_device_map,
    map_not_found,
    resolve_map,
)
from plantwatch.config.hj212 import Hj212Config
from plantwatch.config.mqtt_map import MqttDeviceMap
from plantwatch.config.problems import ConfigError, Problem, problems_from_validation, read_yaml
from plantwatch.config.targets import Target, resolve_targets
from plantwatch.config.units import Duration, Size, Strict
from plantwatch.contract.hj212 import ROLE_CODES
from plantwatch.contract.influx import RESERVED_TAGS, tag_value_as_stored
from plantwatch.core.durations import parse_duration
from plantwatch.core.event_time import Marks

_TAG_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Endpoint:
    """Where a Modbus device is reached: a TCP socket (Modbus TCP or RTU framing) or a serial port."""

    kind: Literal["tcp", "rtu+tcp", "serial"]
    host: str = ""
    port: int = 502
    path: str = ""
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: int = 1
    bytesize: int = 8

    @property
    def bus_key(self) -> str:
        """Identity of the physical bus: devices with the same key share one connection."""
        if self.kind == "serial":
            return f"serial://{self.path}"
        return f"{self.kind}://{self.host}:{self.port}"


def parse_endpoint(url: str) -> Endpoint:
    """Parse tcp://host:port, rtu+tcp://host:port or serial:///dev/tty?baudrate=..&parity=.."""
    parts = urlsplit(url)
    if parts.scheme in ("tcp", "rtu+tcp"):
        if not parts.hostname:
            raise ValueError(f"{url!r} has no host; expected {parts.scheme}://host:port")
        try:
            port = parts.port or 502
        except ValueError as exc:
            raise ValueError(f"{url!r} has an invalid port") from exc
        if parts.path not in ("", "/") or parts.query:
            raise ValueError(f"{url!r}: a {parts.scheme} URL takes no path or query")
        return Endpoint(kind=parts.scheme, host=parts.hostname, port=port)  # type: ignore[arg-type]
    if parts.scheme == "serial":
        if not parts.path or parts.netloc:
            raise ValueError(f"{url!r}: expected serial:///dev/ttyUSB0?baudrate=9600&parity=E")
        options = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = set(options) - {"baudrate", "parity", "stopbits", "bytesize"}
        if unknown:
            raise ValueError(f"{url!r}: unknown serial option(s) {', '.join(sorted(unknown))}")
        try:
            baudrate = int(options.get("baudrate", 9600))
            stopbits = int(options.get("stopbits", 1))
            bytesize = int(options.get("bytesize", 8))
        except ValueError as exc:
            raise ValueError(f"{url!r}: baudrate, stopbits and bytesize are integers") from exc
        parity = options.get("parity", "N").upper()
        if parity not in ("N", "E", "O"):
            raise ValueError(f"{url!r}: parity must be N, E or O")
        if stopbits not in (1, 2) or bytesize not in (7, 8) or baudrate <= 0:
            raise ValueError(f"{url!r}: stopbits must be 1 or 2, bytesize 7 or 8, baudrate > 0")
        return Endpoint(
            kind="serial",
            path=parts.path,
            baudrate=baudrate,
            parity=parity,  # type: ignore[arg-type]
            stopbits=stopbits,
            bytesize=bytesize,
        )
    raise ValueError(f"{url!r}: scheme must be tcp://, rtu+tcp:// or serial://")


DEFAULT_MQTT_INTERVAL = 60.0  # an MQTT device publishing minute data, unless told otherwise


class PlantInfo(Strict):
    """The plant's identity, used as a tag on everything it produces."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str  # the plant's official name, in zh mails and reports
    name_en: str | None = None  # in en mails and reports (default: `name`)

    def name_in(self, lang: str) -> str:
        """The plant's name for a reader of `lang`."""
        return (self.name_en or self.name) if lang == "en" else self.name


class DeviceConfig(Strict):
    """One polled device: which map describes it and how to reach it."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    map: str
    url: str | None = None  # Modbus devices only; MQTT devices come through the `mqtt` section
    vars: dict[str, str] = Field(default_factory=dict)  # MQTT topic placeholders, e.g. {group: g1}
    unit: int = Field(default=1, ge=0, le=255)
    interval: Duration = 1.0
    timeout: Duration = 1.0  # when not given: the smaller of 1 s and `interval`
    jitter: Annotated[float, BeforeValidator(lambda v: 0.0 if v in (0, "0") else parse_duration(v))] = 0.0
    max_insert: int = Field(default=10, ge=0, le=124)
    tags: dict[str, str] = Field(default_factory=dict)
    lateness: Duration | Literal[0] | None = None  # default: event_time.lateness for devices with clocks

    @model_validator(mode="before")
    @classmethod
    def _default_timeout(cls, data: Any) -> Any:
        """A fast device needs no `timeout` of its own: by default it is min(1 s, interval)."""
        if isinstance(data, dict) and "timeout" not in data and "interval" in data:
            with contextlib.suppress(ValueError):  # a bad interval is reported on its own key
                data = {**data, "timeout": min(1.0, parse_duration(data["interval"]))}
        return data

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str | None) -> str | None:
        if url is not None:
            parse_endpoint(url)
        return url

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, tags: dict[str, str]) -> dict[str, str]:
        for key, value in tags.items():
            if not _TAG_KEY.match(key):
                raise ValueError(f"tag key {key!r} must be lowercase letters, digits and _")
            if key in RESERVED_TAGS:
                raise ValueError(f"tag key {key!r} is set by plantwatch itself")
            if value != tag_value_as_stored(value):
                raise ValueError(f"tag {key}: value {value!r} has a newline, control character or backslash")
        return tags

    @model_validator(mode="after")
    def _check_timing(self) -> DeviceConfig:
        if self.timeout > self.interval:
            raise ValueError(
                f"timeout {self.timeout}s is longer than interval {self.interval}s; polls would overlap"
            )
        if self.jitter >= self.interval:
            raise ValueError(f"jitter {self.jitter}s must be shorter than interval {self.interval}s")
        return self

    @property
    def endpoint(self) -> Endpoint:
        """Parsed `url` (Modbus devices only)."""
        if self.url is None:
            raise ValueError(f"device {self.id} has no url")
        return parse_endpoint(self.url)


class InfluxConfig(Strict):
    """Where readings go. Secrets are named by environment variable, never written here."""

    url: str = Field(pattern=r"^https?://[^/\s]+(/.*)?$")
    api: Literal["v2", "v1"] = "v2"
    org: str | None = None
    bucket: str | None = None
    database: str | None = None
    retention_policy: str | None = None
    token_env: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    flush_interval: Duration = 1.0
    timeout: Duration = 10.0
    shutdown_timeout: Duration = 10.0
    verify_tls: bool = True

    @model_validator(mode="after")
    def _check_target(self) -> InfluxConfig:
        if self.api == "v2" and not self.bucket:
            raise ValueError("api v2 needs `bucket` (for InfluxDB 1.8: database/retention_policy)")
        if self.api == "v1" and not self.database:
            raise ValueError("api v1 needs `database`")
        if self.api == "v1" and (self.org or self.bucket):
            raise ValueError("`org` and `bucket` belong to api v2; api v1 uses `database`")
        return self


class BufferConfig(Strict):
    """The on-disk store-and-forward buffer between the collector and InfluxDB."""

    path: str = "plantwatch-buffer.sqlite"
    max_size: Size = 1_000_000_000
    when_full: Literal["refuse_new", "drop_oldest"] = "refuse_new"
    synchronous: Literal["normal", "full"] = "normal"
    dead_letter: str = "plantwatch-dead-letter.jsonl"


class MqttConfig(Strict):
    """The MQTT broker: where MQTT devices publish and where the readings bus goes."""

    url: str = Field(pattern=r"^mqtts?://[^/\s]+$")
    client_id: str | None = None  # default: plantwatch-<plant id>
    username_env: str | None = None
    password_env: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    qos: Literal[0, 1] = 1
    # 5, or 3.1.1 for brokers without MQTT 5 (amqtt, older gateways): no session expiry (the
    # broker keeps a persistent session as long as it likes) and no shared subscriptions
    protocol_version: Literal["5", "3.1.1"] = "5"
    clean_start: bool = False  # keep the session: the broker queues messages while we are down
    session_expiry: Duration = 86400.0  # MQTT 5 only
    connect_timeout: Duration = 10.0  # from the TCP connect to the broker's answer (CONNACK)
    max_payload: Size = 262_144
    # distinct values a topic level turned tag may take per device (each is an InfluxDB series);
    # past it, new values are stored as "_other" and counted
    max_tag_values: int = Field(default=1000, ge=1)
    publish_readings: bool = True  # republish every reading to plantwatch/v2/<plant>/<device>

    @field_validator("protocol_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value  # `protocol_version: 5` in YAML

    @model_validator(mode="after")
    def _check_tls(self) -> MqttConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("`cert_file` and `key_file` go together (client certificate)")
        if self.url.startswith("mqtt://") and (self.ca_file or self.cert_file):
            raise ValueError("TLS files need an mqtts:// url")
        return self


class EventTimeConfig(Strict):
    """How the time each device says its values were measured is checked and waited for."""

    # Readings stamped further ahead of this machine's clock are `bad timestamp`, never used.
    max_skew: Duration = 300.0
    # Devices with a clock of their own (payload timestamps, clock registers): how long KPI windows
    # wait for late or out-of-order readings before they are final. Others are stamped with the
    # poll or arrival time, which only moves forward: they wait for nothing.
    lateness: Duration | Literal[0] = 120.0


class GroupConfig(Strict):
    """Devices whose meters a group target reads together (a steel works: its furnaces, its stack
    CEMS, its water meter)."""

    devices: list[str] = Field(min_length=2)


class PlantConfig(Strict):
    """A whole `plant.yaml`."""

    plant: PlantInfo
    devices: list[DeviceConfig] = Field(default_factory=list)
    influx: InfluxConfig | None = None
    buffer: BufferConfig = Field(default_factory=BufferConfig)
    mqtt: MqttConfig | None = None
    event_time: EventTimeConfig = Field(default_factory=EventTimeConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    hj212: Hj212Config | None = None
    groups: dict[str, GroupConfig] = Field(default_factory=dict)  # group id -> its devices


@dataclass(frozen=True)
class Plant:
    """A validated plant config with every device's map loaded."""

    config: PlantConfig
    maps: dict[str, AnyDeviceMap]  # device id -> its map

    path: Path | None = None

    def devices_of(self, kind: type[DeviceMap] | type[MqttDeviceMap]) -> list[DeviceConfig]:
        """The devices whose map is a Modbus `DeviceMap` or an `MqttDeviceMap`."""
        return [d for d in self.config.devices if isinstance(self.maps.get(d.id), kind)]

    def device(self, device_id: str) -> DeviceConfig:
        """The device called `device_id`."""
        return next(d for d in self.config.devices if d.id == device_id)

    def has_clock(self, device_id: str) -> bool:
        """Whether the device stamps its values itself (payload timestamps, Sparkplug metric
        times, clock registers) rather than being stamped with the poll or arrival time."""
        device_map = self.maps[device_id]
        if isinstance(device_map, MqttDeviceMap):
            return device_map.timestamp is not None or device_map.format == "sparkplug_b"
        return bool(device_map.clock_registers())

    def marks(self, device_id: str) -> Marks:
        """Which moment of its period a device's timestamp names (start, end, or the instant)."""
        device_map = self.maps[device_id]
        if isinstance(device_map, MqttDeviceMap):
            return device_map.timestamp.marks if device_map.timestamp else "instant"
        return device_map.clock.marks if device_map.clock else "instant"

    def lateness(self, device_id: str) -> float:
        """Seconds the device's KPI windows wait for late readings (0 without a clock of its own)."""
        device = self.device(device_id)
        if device.lateness is not None:
            return float(device.lateness)
        return float(self.config.event_time.lateness) if self.has_clock(device_id) else 0.0

    def expected_interval(self, device_id: str) -> float:
        """Seconds between the device's readings: its poll `interval`; for an MQTT device the
        `interval` it is given, else its map's, else one minute."""
        device, device_map = self.device(device_id), self.maps.get(device_id)
        if isinstance(device_map, MqttDeviceMap) and "interval" not in device.model_fields_set:
            return device_map.interval or DEFAULT_MQTT_INTERVAL
        return device.interval

    def targets_by_device(self, targets: list[Target]) -> dict[str, list[Target]]:
        """Device id -> the targets that watch it."""
        return {
            device.id: [t for t in targets if t.applies_to(device.id, self.maps[device.id])]
            for device in self.config.devices
            if device.id in self.maps
        }


def _cross_checks(
    devices: list[tuple[int, DeviceConfig]], file: str, base_dir: Path
) -> tuple[list[tuple[int, Problem]], dict[str, AnyDeviceMap]]:
    """Second pass over schema-valid devices: duplicates, buses, loadable maps, protocol fit.

    Returns each problem with the index of the device it belongs to.
    """
    problems: list[tuple[int, Problem]] = []
    maps: dict[str, AnyDeviceMap] = {}
    seen_ids: dict[str, int] = {}
    seen_addr: dict[tuple[str, int], int] = {}
    serial_settings: dict[str, tuple[int, Endpoint]] = {}
    loaded: dict[Path, AnyDeviceMap] = {}

    def add(i: int, key: str, message: str) -> None:
        problems.append((i, Problem(file, f"devices.{i}.{key}", message)))

    for i, dev in devices:
        if dev.id in seen_ids:
            add(i, "id", f"duplicate device id {dev.id!r} (also devices.{seen_ids[dev.id]})")
        seen_ids.setdefault(dev.id, i)
        if dev.url is not None:
            endpoint = dev.endpoint
            address = (endpoint.bus_key, dev.unit)
            if address in seen_addr:
                add(
                    i,
                    "unit",
                    f"unit {dev.unit} on {endpoint.bus_key} is already devices.{seen_addr[address]}",
                )
            seen_addr.setdefault(address, i)
            if endpoint.kind == "serial":
                first = serial_settings.setdefault(endpoint.path, (i, endpoint))
                if first[1] != endpoint:
                    add(
                        i,
                        "url",
                        f"serial settings differ from devices.{first[0]} on the same port {endpoint.path}",
                    )
        map_path = resolve_map(dev.map, base_dir)
        if not map_path.exists():
            add(i, "map", map_not_found(dev.map, map_path))
            continue
        try:
            if map_path not in loaded:  # many devices share a model: load each file once
                loaded[map_path] = load_device_map(map_path)
            maps[dev.id] = loaded[map_path]
        except ConfigError as exc:
            add(i, "map", f"device map {dev.map!r} is invalid ({len(exc.problems)} problem(s), below)")
            problems.extend((i, problem) for problem in exc.problems)
            continue
        device_map = maps[dev.id]
        if isinstance(device_map, MqttDeviceMap) and dev.url is not None:
            add(
                i,
                "url",
                f"map {dev.map!r} is an MQTT map: remove `url`, devices publish to the `mqtt` broker",
            )
        elif isinstance(device_map, DeviceMap) and dev.url is None:
            add(i, "url", f"map {dev.map!r} is a Modbus map: `url` is required")
        elif isinstance(device_map, MqttDeviceMap) and device_map.format == "sparkplug_b":
            missing = [v for v in ("group", "edge_node") if v not in dev.vars]
            if missing:
                add(i, "vars", f"a sparkplug_b device needs vars {', '.join(missing)} (its topic levels)")
    return problems, maps


def _valid_devices(data: dict[str, Any]) -> list[tuple[int, DeviceConfig]]:
    """The devices that pass the schema on their own, with their index in the file."""
    raw = data.get("devices")
    valid = []
    for i, entry in enumerate(raw if isinstance(raw, list) else []):
        try:
            valid.append((i, DeviceConfig.model_validate(entry)))
        except ValidationError:
            continue
    return valid


def parse_plant_config(data: Any, file: str, base_dir: Path) -> Plant:
    """Validate a parsed YAML document as a plant config; raise ConfigError listing every problem.

    Schema problems and the cross-checks of the devices that passed the schema are reported
    together, so one run of `validate` shows everything there is to fix.
    """
    if not isinstance(data, dict):
        raise ConfigError([Problem(file, "", "a plant config must be a mapping of keys")])
    schema: list[Problem] = []
    config: PlantConfig | None = None
    try:
        config = PlantConfig.model_validate(data)
    except ValidationError as exc:
        schema = problems_from_validation(file, exc)
    cross, maps = _cross_checks(_valid_devices(data), file, base_dir)
    if not schema and not cross and config is not None:
        plant = Plant(config=config, maps=maps, path=Path(file))
        alert_problems = _target_problems(plant, file)
        if not alert_problems:
            return plant
        raise ConfigError(alert_problems)
    # Plant-level problems first, then each device's schema and cross-check problems in file order.
    ordered = [(_device_index(p), 0, n, p) for n, p in enumerate(schema)]
    ordered += [(i, 1, n, p) for n, (i, p) in enumerate(cross)]
    raise ConfigError([p for *_, p in sorted(ordered, key=lambda e: e[:3])])


def _target_problems(plant: Plant, file: str) -> list[Problem]:
    """The plant's alert problems: bad target overrides, targets without a number for a device
    they watch (ferronickel, polysilicon), and names of devices that do not exist."""
    alerts = plant.config.alerts
    try:
        targets = resolve_targets(alerts, file)
    except ConfigError as exc:
        return exc.problems
    problems = []
    known = {d.id for d in plant.config.devices}
    for target_id, fields in alerts.targets.items():
        for device_id in fields.devices or []:
            if device_id not in known:
                problems.append(
                    Problem(file, f"alerts.targets.{target_id}.devices", f"no device {device_id!r}")
                )
    for group_id, group in plant.config.groups.items():
        if group_id in known:
            problems.append(
                Problem(file, f"groups.{group_id}", "a group id must differ from every device id")
            )
        for device_id in group.devices:
            if device_id not in known:
                problems.append(Problem(file, f"groups.{group_id}.devices", f"no device {device_id!r}"))
    for index, platform in enumerate(plant.config.hj212.platforms if plant.config.hj212 else []):
        for device_id in platform.devices:
            if device_id not in known:
                key = f"hj212.platforms.{index}.devices"
                problems.append(Problem(file, key, f"no device {device_id!r}"))
            elif not hj212_codes(plant.maps[device_id]):
                key = f"hj212.platforms.{index}.devices"
                problems.append(
                    Problem(
                        file, key, f"device {device_id!r} has no field with a pollutant code (role or hj212)"
                    )
                )
    for device_id in alerts.o2_reference:
        if device_id not in known:
            problems.append(Problem(file, f"alerts.o2_reference.{device_id}", f"no device {device_id!r}"))
    for device_id, watched in plant.targets_by_device(targets).items():
        for target in watched:
            if target.value is None and target.kpi != "capacity":  # capacity: only when the plant says
                problems.append(
                    Problem(
                        file,
                        f"alerts.targets.{target.id}.value",
                        f"device {device_id} is a {target.product or target.sector} device and the plan "
                        f"gives no number ({target.quote('en')}): set the plant's value in {target.unit}",
                    )
                )
    return problems


def _device_index(problem: Problem) -> int:
    """Index of the device a problem's key path is under, -1 for plant-level keys."""
    parts = problem.path.split(".")
    if parts[0] == "devices" and len(parts) > 1 and parts[1].isdigit():
        return int(parts[1])
    return -1


def load_plant_config(path: Path) -> Plant:
    """Load and validate a plant config and every device map it refers to."""
    return parse_plant_config(read_yaml(path), str(path), path.parent)


def hj212_codes(device_map: AnyDeviceMap) -> dict[str, str]:
    """Field name -> HJ 212 pollutant code: the field's own `hj212`, else its role's."""
    fields = device_map.registers if isinstance(device_map, DeviceMap) else device_map.fields
    out = {}
    for f in fields:
        code = f.hj212 or (ROLE_CODES.get(str(f.role)) if f.role else None)
        if code:
            out[f.name] = code
    return out
