"""Device map schema (`device_maps/*.yaml`): a meter model's registers, types, scaling and roles."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator

from plantwatch.config.hj212 import Hj212Code
from plantwatch.config.mqtt_map import MqttDeviceMap, MqttField
from plantwatch.config.problems import ConfigError, Problem, problems_from_validation, read_yaml
from plantwatch.config.roles import CLOCK_PARTS, CLOCK_ROLES, Role, Sector
from plantwatch.config.units import MEASUREMENT_PATTERN, Strict
from plantwatch.core.codecs import INTEGER_TYPES, NUMERIC_TYPES, ByteOrder, ValueType, width
from plantwatch.core.event_time import Marks

Table = Literal["holding", "input", "coil", "discrete"]
BIT_TABLES = frozenset({"coil", "discrete"})
# Most registers / bits one read request may carry (Modbus application protocol 1.1b3, 6.1-6.4).
MAX_REGISTERS_PER_READ = 125
MAX_BITS_PER_READ = 2000
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"


class Counter(Strict):
    """A cumulative counter that wraps to zero after 2**bits - 1."""

    bits: Literal[16, 32, 48, 64]


class RegisterDefaults(Strict):
    """Keys a map's `defaults` may set for every register (all but `name` and `address`)."""

    table: Table | None = None
    type: ValueType | None = None
    bit: int | None = Field(default=None, ge=0, le=15)
    length: int | None = Field(default=None, ge=1)
    byte_order: ByteOrder | None = None
    scale: float | None = None
    offset: float | None = None
    unit: str | None = None
    role: Role | None = None
    counter: Counter | None = None
    description: str | None = None


class ClockSpec(Strict):
    """How to read the device clock held in the map's `clock_*` registers."""

    timezone: str = "Asia/Shanghai"  # the zone of year..second registers (an epoch is UTC)
    marks: Marks = "instant"  # which moment of a value's period the clock names

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{name!r} is not an IANA time zone such as Asia/Shanghai") from exc
        return name


class Register(Strict):
    """One value read from a device: where it lives, how to decode it, what it means."""

    name: str = Field(pattern=NAME_PATTERN)
    table: Table = "holding"
    address: int = Field(ge=0, le=65535)
    type: ValueType = "uint16"
    bit: int | None = Field(default=None, ge=0, le=15)
    length: int | None = Field(default=None, ge=1)
    byte_order: ByteOrder = "ABCD"
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    role: Role | None = None
    counter: Counter | None = None
    description: str | None = None
    hj212: Hj212Code | None = None  # the pollutant code reported over HJ 212 (default: by role)

    @model_validator(mode="after")
    def _check_type_rules(self) -> Register:
        """Which keys are legal with which table and type (like Home Assistant's modbus)."""
        problem = self._type_rule_problem()
        if problem:
            raise ValueError(f"{self.name!r}: {problem}")
        return self

    def _type_rule_problem(self) -> str | None:
        if self.table in BIT_TABLES and self.type != "bool":
            return f"table {self.table} holds single bits: type must be bool, not {self.type}"
        if self.bit is not None and (self.type != "bool" or self.table in BIT_TABLES):
            return (
                "`bit` is only legal with type bool in a register table, "
                f"not type {self.type} in table {self.table}"
            )
        if self.type == "string" and self.length is None:
            return "type string needs `length` (in registers)"
        if self.length is not None and self.type != "string":
            return f"`length` is only legal with type string, not {self.type}"
        if self.type not in NUMERIC_TYPES and (self.scale != 1 or self.offset != 0):
            return f"`scale`/`offset` are illegal with type {self.type}"
        if self.counter is not None and self.type not in INTEGER_TYPES:
            return f"`counter` needs an integer type, not {self.type}"
        if self.counter is not None and self.counter.bits > 16 * width(self.type):
            return f"counter.bits {self.counter.bits} is wider than type {self.type}"
        limit = MAX_BITS_PER_READ if self.table in BIT_TABLES else MAX_REGISTERS_PER_READ
        if self.width > limit:
            return f"{self.width} registers cannot be read in one request (max {limit})"
        if self.address + self.width > 65536:
            return f"address {self.address} + width {self.width} runs past the last address 65535"
        return None

    @property
    def width(self) -> int:
        """Registers (or bits) this value occupies."""
        return width(self.type, self.length)

    @property
    def end(self) -> int:
        """First address after this value."""
        return self.address + self.width


class DeviceMap(Strict):
    """A meter model: its identity, sector and register layout."""

    model: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str
    sector: Sector
    product: str | None = None
    protocol: Literal["modbus"]  # MQTT devices: see mqtt_map.py
    source: str | None = Field(
        default=None, description="where the layout comes from: a vendor manual, or 'generic'"
    )
    measurement: str | None = Field(default=None, pattern=MEASUREMENT_PATTERN)  # InfluxDB measurement
    defaults: RegisterDefaults | None = None
    clock: ClockSpec | None = None  # settings of the device clock (its registers have clock_* roles)
    registers: list[Register] = Field(min_length=1)

    def register(self, name: str) -> Register:
        """The register called `name`."""
        for reg in self.registers:
            if reg.name == name:
                return reg
        raise KeyError(name)

    def clock_registers(self) -> dict[Role, Register]:
        """The registers of the device clock, by role (empty when the device has no clock)."""
        return {reg.role: reg for reg in self.registers if reg.role in CLOCK_ROLES}


AnyDeviceMap = DeviceMap | MqttDeviceMap


def map_values(device_map: AnyDeviceMap) -> list[Register] | list[MqttField]:
    """The named values a map produces: a Modbus map's registers, an MQTT map's fields."""
    return device_map.registers if isinstance(device_map, DeviceMap) else device_map.fields


def _clock_problems(device_map: DeviceMap) -> list[tuple[str, str]]:
    """A device clock is one `clock_epoch` register, or `clock_year` to `clock_minute` (and
    optionally `clock_second`), integers, each role once; `clock:` needs those registers."""
    problems = []
    seen: dict[Role, int] = {}
    for i, reg in enumerate(device_map.registers):
        if reg.role not in CLOCK_ROLES:
            continue
        if reg.type not in INTEGER_TYPES:
            problems.append((f"registers.{i}.type", f"{reg.name!r}: a {reg.role} register is an integer"))
        if reg.role in seen:
            problems.append(
                (f"registers.{i}.role", f"{reg.role} is already registers.{seen[reg.role]}: one clock only")
            )
        seen.setdefault(reg.role, i)
    if not seen:
        if device_map.clock is not None:
            problems.append(("clock", "no register has a clock_* role: the clock has nothing to read"))
        return problems
    parts = [role for role in CLOCK_PARTS if role in seen]
    if Role.CLOCK_EPOCH in seen and parts:
        problems.append(("registers", "a device clock is clock_epoch or clock_year..clock_second, not both"))
    elif Role.CLOCK_EPOCH not in seen:
        missing = [role.value for role in CLOCK_PARTS[:-1] if role not in seen]
        if missing:
            problems.append(("registers", f"the device clock needs registers with role {', '.join(missing)}"))
    return problems


def _cross_checks(device_map: DeviceMap) -> list[tuple[str, str]]:
    """Second pass: duplicate names, overlapping registers and the device clock, as
    (key path, message)."""
    problems = _clock_problems(device_map)
    seen: dict[str, int] = {}
    for i, reg in enumerate(device_map.registers):
        if reg.name in seen:
            problems.append(
                (f"registers.{i}.name", f"duplicate name {reg.name!r} (also registers.{seen[reg.name]})")
            )
        seen.setdefault(reg.name, i)
    by_table: dict[str, list[tuple[int, Register]]] = {}
    for i, reg in enumerate(device_map.registers):
        by_table.setdefault(reg.table, []).append((i, reg))
    for entries in by_table.values():
        entries.sort(key=lambda e: (e[1].address, e[1].end))
        for (i_a, a), (i_b, b) in itertools.pairwise(entries):
            if b.address >= a.end:
                continue
            both_bits = a.bit is not None and b.bit is not None and a.address == b.address
            if both_bits and a.bit != b.bit:
                continue
            problems.append(
                (
                    f"registers.{i_b}.address",
                    f"{b.name!r} ({b.table} {b.address}..{b.end - 1}) overlaps "
                    f"{a.name!r} ({a.table} {a.address}..{a.end - 1}, registers.{i_a})",
                )
            )
    return problems


def parse_device_map(data: Any, file: str, *, expected_model: str | None = None) -> AnyDeviceMap:
    """Validate a parsed YAML document as a device map; raise ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError([Problem(file, "", "a device map must be a mapping of keys")])
    protocol = data.get("protocol")
    if protocol == "mqtt":
        return _parse_mqtt_map(data, file, expected_model)
    if protocol not in ("modbus", None):
        raise ConfigError([Problem(file, "protocol", f"must be modbus or mqtt (got {protocol!r})")])
    defaults_data = data.get("defaults") or {}
    try:
        defaults = RegisterDefaults.model_validate(defaults_data)
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(file, exc, "defaults")) from exc
    merged = dict(data)
    registers = data.get("registers")
    if isinstance(registers, list):
        given = defaults.model_dump(exclude_none=True)
        merged["registers"] = [{**given, **reg} if isinstance(reg, dict) else reg for reg in registers]
    try:
        device_map = DeviceMap.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(file, exc)) from exc
    problems = [Problem(file, path, msg) for path, msg in _cross_checks(device_map)]
    if expected_model is not None and device_map.model != expected_model:
        problems.append(
            Problem(file, "model", f"{device_map.model!r} must equal the file name {expected_model!r}")
        )
    if problems:
        raise ConfigError(problems)
    return device_map


def _parse_mqtt_map(data: dict[str, Any], file: str, expected_model: str | None) -> MqttDeviceMap:
    try:
        device_map = MqttDeviceMap.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(file, exc)) from exc
    if expected_model is not None and device_map.model != expected_model:
        raise ConfigError(
            [Problem(file, "model", f"{device_map.model!r} must equal the file name {expected_model!r}")]
        )
    return device_map


def load_device_map(path: Path) -> AnyDeviceMap:
    """Load and validate one device map file; its `model` must equal its file stem."""
    return parse_device_map(read_yaml(path), str(path), expected_model=path.stem)


def shipped_maps_dir() -> Path:
    """Folder of the device maps shipped with plantwatch."""
    return Path(__file__).resolve().parent.parent / "device_maps"


def resolve_map(ref: str, base_dir: Path | None = None) -> Path:
    """Find a map by model id (a shipped map) or by path (relative to `base_dir`)."""
    if "/" in ref or ref.endswith((".yaml", ".yml")):
        path = Path(ref)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return path
    return shipped_maps_dir() / f"{ref}.yaml"


def map_not_found(ref: str, path: Path) -> str:
    """Why `ref` resolved to no file, naming the shipped models when it looked like a model id."""
    if path.parent == shipped_maps_dir():
        return f"{ref!r} is not a shipped model ({', '.join(shipped_models())}) nor a .yaml path"
    return f"no device map file {ref!r}"


def shipped_models() -> list[str]:
    """Model ids of every shipped map."""
    return sorted(p.stem for p in shipped_maps_dir().glob("*.yaml"))
