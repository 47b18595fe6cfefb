"""Plant totals: a per-tonne target over all the devices it watches together (every ferrosilicon
furnace of the plant), as the plans count a plant: Σ energy ÷ Σ product over the calendar window
the target is judged over, beside each device's own value.

It adds up the devices' own calendar windows (same counter rules, same event-time windows): a
total closes when every device has closed that window, watched whole; a device that missed part of
it (it started mid-window, it was not there) leaves that window without a total, as a device's own
value would be. To-date totals add up each device's latest to-date value of the same window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from plantwatch.alerts.kpi.value import KpiValue
from plantwatch.config.targets import Target
from plantwatch.contract.influx import TOTAL_DEVICE_PREFIX


@dataclass
class Total:
    """One target's total over its devices."""

    device: str  # the total's id, e.g. total-ferrosilicon
    target: Target
    rule: str  # the judged rule it totals, `<target id>:<window>`
    members: frozenset[str]
    closed: dict[int, dict[str, tuple[float, float]]] = field(default_factory=dict)  # start -> member sums
    ends: dict[int, int] = field(default_factory=dict)  # start -> end of the windows in `closed`
    to_date: dict[str, tuple[int, int, float, float]] = field(
        default_factory=dict
    )  # member -> start, ts, sums
    passed: dict[str, int] = field(default_factory=dict)  # member -> its watermark


class PlantTotals:
    """Totals of every judged per-tonne rule watched on two or more devices."""

    def __init__(self, judged: dict[str, tuple[Target, list[str]]]) -> None:
        """`judged`: rule -> (target, the devices computing it)."""
        self.totals = {
            rule: Total(
                TOTAL_DEVICE_PREFIX + (target.product or target.sector), target, rule, frozenset(devices)
            )
            for rule, (target, devices) in judged.items()
            if len(devices) >= 2
        }
        self.dirty = False

    def offer(self, kpis: list[KpiValue]) -> list[KpiValue]:
        """The devices' own values just computed: the totals they complete or update."""
        out: list[KpiValue] = []
        for kpi in kpis:
            total = self.totals.get(kpi.rule)
            if total is None or kpi.device not in total.members or kpi.numerator is None:
                continue
            sums = (kpi.numerator, kpi.denominator or 0.0)
            self.dirty = True
            if kpi.kind == "closed":
                total.closed.setdefault(kpi.start_ns, {})[kpi.device] = sums
                total.ends[kpi.start_ns] = kpi.ts_ns
                total.to_date.pop(kpi.device, None)
                out += self._complete(total, kpi.start_ns)
            elif kpi.kind == "to-date":
                total.to_date[kpi.device] = (kpi.start_ns, kpi.ts_ns, *sums)
                out += self._to_date(total, kpi.start_ns)
        return out

    def advance(self, device: str, watermark_ns: int | None) -> None:
        """A device's watermark: a window it has passed without a closed value gets no total."""
        if watermark_ns is None:
            return
        for total in self.totals.values():
            if device not in total.members:
                continue
            total.passed[device] = watermark_ns
            for start, sums in list(total.closed.items()):
                missing = total.members - sums.keys()
                if all(total.passed.get(m, 0) >= total.ends[start] for m in missing):
                    del total.closed[start], total.ends[start]
                    self.dirty = True

    def _complete(self, total: Total, start: int) -> list[KpiValue]:
        sums = total.closed[start]
        if sums.keys() != total.members:
            return []
        end = total.ends.pop(start)
        del total.closed[start]
        energy = sum(e for e, _ in sums.values())
        product = sum(p for _, p in sums.values())
        return [self._kpi(total, "closed", start, end, energy, product)]

    def _to_date(self, total: Total, start: int) -> list[KpiValue]:
        same = [v for v in total.to_date.values() if v[0] == start]
        energy, product = sum(v[2] for v in same), sum(v[3] for v in same)
        if product <= 0:
            return []
        return [self._kpi(total, "to-date", start, max(v[1] for v in same), energy, product)]

    @staticmethod
    def _kpi(total: Total, kind: str, start: int, end: int, energy: float, product: float) -> KpiValue:
        value = energy / product if product > 0 else None
        return KpiValue(total.device, total.target.id, total.rule, value, end, start, kind, energy, product)

    def state(self) -> dict[str, Any]:
        """Sums waiting for other devices, and the to-date sums (for a restart)."""
        self.dirty = False
        return {
            rule: {
                "closed": {str(s): {m: list(v) for m, v in sums.items()} for s, sums in t.closed.items()},
                "ends": {str(s): e for s, e in t.ends.items()},
                "to_date": {m: list(v) for m, v in t.to_date.items()},
            }
            for rule, t in self.totals.items()
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from `state()`."""
        for rule, saved in state.items():
            total = self.totals.get(rule)
            if total is None:
                continue
            total.closed = {
                int(s): {m: (float(v[0]), float(v[1])) for m, v in sums.items()}
                for s, sums in saved.get("closed", {}).items()
            }
            total.ends = {int(s): int(e) for s, e in saved.get("ends", {}).items()}
            total.to_date = {
                m: (int(v[0]), int(v[1]), float(v[2]), float(v[3]))
                for m, v in saved.get("to_date", {}).items()
            }
