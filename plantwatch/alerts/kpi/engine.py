"""The KPI engine: each device's calculators, built from its map roles and the targets that watch
it, fed in event order through the device's watermark (docs/alerts.md#which-time-each-number-uses)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from plantwatch.alerts.kpi.capacity import CapacityWatch
from plantwatch.alerts.kpi.coverage import WasteHeatCoverage
from plantwatch.alerts.kpi.dust import DustHourly
from plantwatch.alerts.kpi.group import Emission, GroupPerTonne
from plantwatch.alerts.kpi.per_tonne import CounterField, PerTonne
from plantwatch.alerts.kpi.potline import PotlineLive
from plantwatch.alerts.kpi.standard_coal import UnitError
from plantwatch.alerts.kpi.totals import PlantTotals
from plantwatch.alerts.kpi.value import KpiValue
from plantwatch.alerts.kpi.watermark import EventTimeGate
from plantwatch.config.device_map import DeviceMap, map_values
from plantwatch.config.plant import Plant
from plantwatch.config.targets import Target
from plantwatch.contract.influx import CAPACITY_DEVICE_PREFIX
from plantwatch.core.event_time import BAD_TIMESTAMP, Marks, window_time
from plantwatch.core.outage_log import OutageLog
from plantwatch.core.reading import PollResult, Reading

log = logging.getLogger(__name__)

TOTALS_STATE = (
    "(plant totals)"  # the key of the totals' state beside the devices' (no device id has brackets)
)
SILENCE_MARGIN = 10.0  # seconds, beside lateness and two intervals, before a device counts as silent
# KPIs integrated over time (a stack's mass, waste-heat coverage): readings further apart than 5
# intervals, and than this, are a gap that counts nothing; minute data (a CEMS logger's minute
# means, HJ 212 minute packets) integrate
GAP_FLOOR_S = 120.0


class Calculator(Protocol):
    """One target's KPI for one device: results in event order, windows closed by the watermark."""

    fields: frozenset[str]  # the fields it reads: a good value of one keeps the device live
    target: Target
    rule: str  # the rule its values feed: the target id, or `<target id>:<judged window>`
    projects: bool  # it also feeds `<rule>:projection` (a calendar month: projection.py)

    def update(self, result: PollResult, ts: int | None = None) -> list[KpiValue]:
        """One result measured at `ts`: the values it completes or updates."""
        ...

    def advance(self, watermark_ns: int) -> list[KpiValue]:
        """The windows that end at or before `watermark_ns`, closed."""
        ...

    def state(self) -> dict[str, Any]:
        """What a restart needs to continue the open windows."""
        ...

    def restore(self, state: dict[str, Any]) -> None:
        """Continue the windows of `state`."""
        ...


@dataclass
class DeviceKpis:
    """One device's calculators behind its event-time gate."""

    device: str
    gate: EventTimeGate
    marks: Marks
    calculators: list[Calculator] = field(default_factory=list)
    skipped: int = 0  # results without a usable event time (every reading `bad timestamp`)

    @property
    def fields(self) -> frozenset[str]:
        """Every field some KPI of the device reads."""
        return frozenset().union(*(c.fields for c in self.calculators))

    def offer(self, result: PollResult, now_ns: int, max_skew_ns: int) -> list[KpiValue] | None:
        """One result as it arrives; None when it came too late for its windows."""
        usable = [r for r in result.readings if _usable(r, now_ns, max_skew_ns)]
        if not usable:
            self.skipped += 1
            return []
        if len(usable) < len(result.readings):
            result = result.with_readings(usable)
        event_ns = window_time(max(r.timestamp_ns for r in usable), self.marks)
        final = self.gate.offer(result, event_ns, now_ns)
        return None if final is None else self._feed(final)

    def tick(self, now_ns: int) -> list[KpiValue]:
        """The windows a silent device's watermark closes."""
        return self._feed(self.gate.tick(now_ns))

    def _feed(self, final: list[tuple[int, PollResult]]) -> list[KpiValue]:
        out: list[KpiValue] = []
        for calculator in self.calculators:
            try:
                for ts, result in final:
                    out += calculator.update(result, ts)
                if self.gate.watermark_ns is not None:
                    out += calculator.advance(self.gate.watermark_ns)
            except (ValueError, TypeError) as exc:  # a bad value must not stop the other KPIs
                log.error("KPI for %s: %s", self.device, exc)
        return out

    def state(self) -> dict[str, Any]:
        """The gate's and every calculator's state, by rule (a catalogue that gains or loses a
        rule moves nothing else)."""
        return {
            "gate": self.gate.state(),
            "calculators": {_key(self.device, c): c.state() for c in self.calculators},
        }

    def restore(self, state: dict[str, Any], now_ns: int) -> None:
        """Continue from `state`; a saved window that no longer fits its calculator (the plant or
        the catalogue changed) is logged and started afresh, never a reason not to start."""
        self.gate.restore(state["gate"], now_ns)
        saved = state["calculators"]
        if isinstance(saved, list):  # saved by a version that kept them in build order: unsafe
            log.warning("KPIs of %s: windows saved by an older version are started afresh", self.device)
            return
        for calculator in self.calculators:
            key = _key(self.device, calculator)
            if key not in saved:
                continue
            try:
                calculator.restore(saved[key])
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                log.warning(
                    "KPIs of %s: saved window of %s does not fit (%r): started afresh", self.device, key, exc
                )


def _key(device: str, calculator: Calculator) -> str:
    """What a calculator's state is saved under: its rule, and whose values it makes."""
    owner = getattr(calculator, "device", device)
    return calculator.rule if owner == device else f"{owner} {calculator.rule}"


def _usable(reading: Reading, now_ns: int, max_skew_ns: int) -> bool:
    """A reading whose time can place it in a window: not `bad timestamp`, not from the future."""
    return not reading.quality.startswith(BAD_TIMESTAMP) and reading.timestamp_ns - now_ns <= max_skew_ns


def field_roles(plant: Plant, device_id: str) -> dict[str, list[CounterField]]:
    """Role -> the device's fields with that role (name, unit, and the wrap of integer registers)."""
    device_map = plant.maps[device_id]
    roles: dict[str, list[CounterField]] = {}
    for f in map_values(device_map):
        if f.role is None:
            continue
        wrap = None
        if isinstance(device_map, DeviceMap) and f.type.startswith("uint"):
            wrap = float(2 ** int(f.type[4:])) * f.scale
        roles.setdefault(f.role.value, []).append(CounterField(f.name, f.unit, f.role.value, wrap))
    return roles


class KpiEngine:
    """Feed it every committed result; it returns the KPI values they complete or update."""

    def __init__(self, plant: Plant, targets: list[Target]) -> None:
        self.devices: dict[str, DeviceKpis] = {}
        self.max_skew_ns = int(plant.config.event_time.max_skew * 1e9)
        self._late_logs: dict[str, OutageLog] = {}
        self._dirty: set[str] = set()  # devices whose windows changed since the last `state()`
        alerts = plant.config.alerts
        for device_id, watched in plant.targets_by_device(targets).items():
            roles = field_roles(plant, device_id)
            for target in watched:
                if target.value is None or target.kpi == "capacity":
                    continue  # no number: validate reports it (capacity: built below, over devices)
                try:
                    calculator, why = self._build(
                        device_id,
                        target,
                        roles,
                        alerts.o2_reference.get(device_id),
                        alerts.timezone,
                        alerts.shift_hours,
                        _max_gap_ns(plant, device_id),
                    )
                except UnitError as exc:  # a map unit the KPI cannot convert: say so once, here
                    calculator, why = None, str(exc)
                if calculator is None:
                    if why:  # else the target does not concern this device
                        log.warning("KPI %s for %s not computed: %s", target.id, device_id, why)
                    continue
                calculators = [calculator]
                if isinstance(calculator, PerTonne):
                    calculators += [calculator.judged(w) for w in target.judged_over if w != target.window]
                self._device(plant, device_id).calculators += calculators
        together: list[GroupPerTonne | CapacityWatch] = [*self._groups(plant, targets)]
        together += self._capacities(plant, targets)
        # saved under a key of their own, once (not with each member, whose copies would age)
        self.together = {f"(over devices) {g.device} {g.rule}": g for g in together}
        for group in together:
            for member in group.members:
                self._device(plant, member).calculators.append(group.feed(member))
        judged: dict[str, tuple[Target, list[str]]] = {}
        for device_id, kpis in self.devices.items():
            for calculator in kpis.calculators:
                if isinstance(calculator, PerTonne) and calculator.rule != calculator.target.id:
                    judged.setdefault(calculator.rule, (calculator.target, []))[1].append(device_id)
        self.totals = PlantTotals(judged)

    def _device(self, plant: Plant, device_id: str) -> DeviceKpis:
        """The device's calculators behind its gate, made on first use."""
        if device_id not in self.devices:
            lateness = plant.lateness(device_id)
            # silent this long (no result at all), the watermark follows the wall clock
            silence = lateness + 2 * plant.expected_interval(device_id) + SILENCE_MARGIN
            gate = EventTimeGate(int(lateness * 1e9), int(silence * 1e9))
            self.devices[device_id] = DeviceKpis(device_id, gate, plant.marks(device_id))
        return self.devices[device_id]

    @staticmethod
    def _groups(plant: Plant, targets: list[Target]) -> list[GroupPerTonne]:
        """Every group target over every plant group whose members have its roles together."""
        out = []
        for group_id, group in plant.config.groups.items():
            sectors = {getattr(plant.maps.get(d), "sector", None) for d in group.devices}
            for target in targets:
                if target.scope != "group" or target.value is None or target.sector not in sectors:
                    continue
                if target.kpi not in ("per_tonne", "share"):
                    continue
                numerator: dict[str, list[CounterField]] = {}
                production: dict[str, list[CounterField]] = {}
                emissions: dict[str, Emission] = {}
                for device_id in group.devices:
                    roles = field_roles(plant, device_id)
                    for term in target.numerator:
                        found = roles.get(term.role, [])
                        if term.flow is not None:  # a stack's mass: concentration x flow
                            flows = roles.get(term.flow, [])
                            if found and flows:
                                unit_problem = _emission_units(found[0], flows[0])
                                if unit_problem:
                                    log.warning(
                                        "KPI %s for group %s not computed: %s",
                                        target.id,
                                        group_id,
                                        unit_problem,
                                    )
                                    continue
                                flags = roles.get("data_flag", [])
                                emissions[device_id] = Emission(
                                    found[0].name,
                                    flows[0].name,
                                    _units(flows[0].unit).endswith("/s"),
                                    flags[0].name if flags else None,
                                    _max_gap_ns(plant, device_id),
                                )
                            continue
                        for f in found:
                            numerator.setdefault(device_id, []).append(replace(f, carrier=term.carrier))
                    made = getattr(plant.maps.get(device_id), "product", None)
                    if target.product is not None and made != target.product:
                        continue  # the tonnes of the target's product only (steel, not coke or sinter)
                    for f in roles.get(target.per or "production_counter", []):
                        production.setdefault(device_id, []).append(f)
                if not (numerator or emissions) or not production:  # a target the group has no use for
                    log.info("KPI %s for group %s not computed: no member has its roles", target.id, group_id)
                    continue
                zone = plant.config.alerts.timezone
                try:
                    out.append(GroupPerTonne(group_id, target, numerator, production, zone, emissions))
                except UnitError as exc:
                    log.warning("KPI %s for group %s not computed: %s", target.id, group_id, exc)
        return out

    @staticmethod
    def _capacities(plant: Plant, targets: list[Target]) -> list[CapacityWatch]:
        """A capacity target with the plant's number: every device it applies to, together."""
        out = []
        watched = plant.targets_by_device(targets)
        for target in targets:
            if target.kpi != "capacity" or target.value is None:
                continue
            production = {
                device_id: fields
                for device_id, device_targets in watched.items()
                if target in device_targets
                and (fields := field_roles(plant, device_id).get("production_counter"))
            }
            if production:
                name = CAPACITY_DEVICE_PREFIX + (target.product or target.sector)
                out.append(CapacityWatch(name, target, production, plant.config.alerts.timezone))
        return out

    @property
    def calculators(self) -> dict[str, list[Calculator]]:
        """Device id -> its calculators."""
        return {device: kpis.calculators for device, kpis in self.devices.items()}

    @staticmethod
    def _build(
        device: str,
        target: Target,
        roles: dict[str, list[CounterField]],
        o2_reference: float | None,
        timezone: str,
        shift_hours: int,
        max_gap_ns: int = 0,  # readings further apart count no time (waste-heat coverage)
    ) -> tuple[Calculator | None, str]:
        def one(role: str) -> CounterField | None:
            fields = roles.get(role)
            return fields[0] if fields else None

        if target.kpi == "dust_hourly":
            dust = one("dust_concentration")
            if dust is None:
                return None, "no dust_concentration field"
            o2, flag = one("o2"), one("data_flag")
            if o2_reference is not None and o2 is None:
                return None, "o2_reference is set but the map has no o2 field"
            o2_name, flag_name = (o2.name if o2 else None), (flag.name if flag else None)
            return DustHourly(device, target, dust.name, o2_name, flag_name, o2_reference), ""
        if target.kpi == "coverage":
            running, power = one("running"), one("waste_heat_power")
            if running is None:
                return None, ""  # not a kiln line (a feeder of its group, say): nothing to say
            if power is None:
                return None, "needs a waste_heat_power field beside running"
            return WasteHeatCoverage(device, target, running.name, power.name, max_gap_ns, timezone), ""
        if target.kpi == "potline_live":
            voltage, efficiency = one("pot_voltage"), one("current_efficiency")
            if voltage is None or efficiency is None:
                return None, "needs pot_voltage and current_efficiency fields"
            return PotlineLive(device, target, voltage.name, efficiency.name), ""
        numerator = []
        for term in target.numerator:
            for f in roles.get(term.role, []):
                numerator.append(CounterField(f.name, f.unit, f.role, f.wrap, term.carrier))
        if not numerator:
            return None, f"no field with role {' or '.join(t.role for t in target.numerator)}"
        if target.per == "tap":
            counter, weight = one("tap_counter"), one("tap_weight")
            if counter is None or weight is None:
                return None, "per-tap needs tap_counter and tap_weight fields"
            return PerTonne(device, target, numerator, None, counter.name, weight, timezone, shift_hours), ""
        production = one(target.per or "production_counter")
        if production is None:
            return None, f"no {target.per} field"
        return PerTonne(device, target, numerator, production, timezone=timezone, shift_hours=shift_hours), ""

    def update(self, result: PollResult, now_ns: int) -> list[KpiValue]:
        """KPI values from one result arriving at `now_ns`; one that comes later than its device's
        lateness is counted and logged (once per episode), not used."""
        kpis = self.devices.get(result.device)
        if kpis is None:
            return []
        out = kpis.offer(result, now_ns, self.max_skew_ns)
        late_log = self._late_logs.setdefault(result.device, OutageLog(log, level=logging.WARNING))
        if out is None:
            late_log.failure(
                "KPIs of %s: readings came after their windows closed (lateness %.0f s): "
                "stored in InfluxDB, not used; %d so far",
                result.device,
                kpis.gate.lateness_ns / 1e9,
                kpis.gate.late,
            )
            return []
        late_log.recovered("KPIs of %s: readings on time again", result.device)
        self._dirty.add(result.device)
        return self._with_totals(result.device, out)

    def _with_totals(self, device: str, out: list[KpiValue]) -> list[KpiValue]:
        """`out` and the plant totals it completes or updates."""
        totals = self.totals.offer(out)
        self.totals.advance(device, self.devices[device].gate.watermark_ns)
        return out + totals

    def tick(self, now_ns: int) -> list[KpiValue]:
        """The windows that silent devices' watermarks close by now."""
        out: list[KpiValue] = []
        for device, kpis in self.devices.items():
            closed = kpis.tick(now_ns)
            if closed:
                self._dirty.add(device)
                out += self._with_totals(device, closed)
        return out

    def fields(self, device: str) -> frozenset[str] | None:
        """The fields the device's KPIs read (None: no KPI watches it)."""
        kpis = self.devices.get(device)
        return kpis.fields if kpis else None

    def changed_state(self) -> dict[str, dict[str, Any]]:
        """The state of every device whose windows changed since the last call."""
        changed = {device: self.devices[device].state() for device in sorted(self._dirty)}
        for key, group in self.together.items():  # a member that changed may have changed them
            if group.members & self._dirty:
                changed[key] = group.state()
        self._dirty.clear()
        if self.totals.dirty:
            changed[TOTALS_STATE] = self.totals.state()
        return changed

    def unsaved(self, changed: dict[str, dict[str, Any]]) -> None:
        """`changed_state()` could not be saved: report those windows as changed again."""
        self._dirty |= changed.keys() & self.devices.keys()
        if TOTALS_STATE in changed:
            self.totals.dirty = True

    def restore(self, states: dict[str, dict[str, Any]], now_ns: int) -> None:
        """Continue the windows saved by `changed_state()` (devices no longer configured are
        ignored)."""
        for device, state in states.items():
            if device in self.devices:
                self.devices[device].restore(state, now_ns)
        calculators: list[tuple[str, PlantTotals | GroupPerTonne | CapacityWatch]] = [
            (TOTALS_STATE, self.totals),
            *self.together.items(),
        ]
        for key, calculator in calculators:
            if key in states:
                try:
                    calculator.restore(states[key])
                except (KeyError, TypeError, ValueError, IndexError) as exc:
                    log.warning("KPIs %s: saved windows do not fit (%r): started afresh", key, exc)


def _max_gap_ns(plant: Plant, device_id: str) -> int:
    """Readings of `device_id` further apart than this count no time (see GAP_FLOOR_S)."""
    return int(max(5 * plant.expected_interval(device_id), GAP_FLOOR_S) * 1e9)


def _units(unit: str | None) -> str:
    return (unit or "").replace("³", "3").replace("Nm3", "m3")


def _emission_units(concentration: CounterField, flow: CounterField) -> str | None:
    """Why a stack's mass cannot be computed from these fields' units (None: it can)."""
    if _units(concentration.unit) != "mg/m3":
        return f"{concentration.name} is in {concentration.unit!r}, not mg/m³"
    if _units(flow.unit) not in ("m3/h", "m3/s"):
        return f"{flow.name} is in {flow.unit!r}, not m³/h or m³/s"
    return None
