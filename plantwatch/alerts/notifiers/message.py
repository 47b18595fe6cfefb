"""The words of an alert in Chinese and English: subject and body, built from one transition."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from plantwatch.alerts.lifecycle import STALE, Transition

# Control characters and every other line break Python knows (NEL, LS, PS): none may reach a header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")

SUBJECT_TAG = {
    "zh": {"firing": "【告警】", "resolved": "【恢复】", "repeat": "【持续告警】"},
    "en": {"firing": "[FIRING]", "resolved": "[RESOLVED]", "repeat": "[STILL FIRING]"},
}
LABELS = {
    "zh": {
        "plant": "企业",
        "device": "设备",
        "indicator": "指标",
        "value": "当前值",
        "target": "目标",
        "window": "统计窗口",
        "since": "开始时间",
        "plan": "依据",
        "rule": "规则",
        "severity": "级别",
        "dashboard": "仪表盘",
        "stale": "无数据（仪表停止上报）",
        "early": "（预警）",
        "detected": "发现时间",
        "late": "（数据迟到：统计窗口结束后才收到）",
    },
    "en": {
        "plant": "Plant",
        "device": "Device",
        "indicator": "Indicator",
        "value": "Value",
        "target": "Target",
        "window": "Window",
        "since": "Started",
        "plan": "Source",
        "rule": "Rule",
        "severity": "Severity",
        "dashboard": "Dashboard",
        "stale": "no readings (the meter stopped reporting)",
        "early": " (early warning)",
        "detected": "Detected",
        "late": " (late data: received after the window ended)",
    },
}


def one_line(text: str) -> str:
    """Header-safe text: control characters (CR, LF) collapse to a space, so no header can be forged."""
    return _CONTROL.sub(" ", text).strip()


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.0f}"


def _local(ts_ns: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def subject(transition: Transition, plant: str, lang: str) -> str:
    """E.g. `[FIRING] works saf-1: unit power consumption 8,013.33 kWh/t (target <= 7,800)`."""
    alert, rule = transition.alert, transition.rule
    tag = SUBJECT_TAG[lang][transition.event]
    if rule.target is None:
        return one_line(f"{tag} {plant} {alert.device}: {LABELS[lang]['stale']}")
    target = rule.target
    early = LABELS[lang]["early"] if rule.id.endswith(":early") else ""
    return one_line(
        f"{tag} {plant} {alert.device}: {target.indicator}{early} {_number(alert.value)} {target.unit}"
        f" ({'目标' if lang == 'zh' else 'target'} {target.comparator} {_number(rule.limit)})"
    )


def body(
    transition: Transition, plant: str, plant_name: str, lang: str, zone: ZoneInfo, link: str | None
) -> str:
    """The plain-text body: every number a regulator needs, and where they come from."""
    alert, rule, labels = transition.alert, transition.rule, LABELS[lang]
    lines = [
        f"{labels['plant']}: {plant_name} ({plant})",
        f"{labels['device']}: {alert.device}",
        f"{labels['rule']}: {rule.id}   {labels['severity']}: {alert.severity}",
    ]
    if rule.target is None or rule.id == STALE:
        lines.append(f"{labels['indicator']}: {labels['stale']}")
        lines.append(f"{labels['since']}: {_local(alert.since_ns, zone)}")
    else:
        target = rule.target
        lines += [
            f"{labels['indicator']}: {target.indicator}",
            f"{labels['value']}: {_number(alert.value)} {target.unit}",
            f"{labels['target']}: {target.comparator} {_number(rule.limit)} {target.unit}"
            + (
                f" ({target.early_warning:.0%} × {_number(target.value)})"
                if rule.id.endswith(":early")
                else ""
            ),
            f"{labels['window']}: {target.window}, {_local(alert.window_start_ns, zone)} – "
            f"{_local(alert.window_end_ns, zone)}",
            f"{labels['since']}: {_local(alert.since_ns, zone)}",
            f"{labels['plan']}: {target.plan}, {target.clause}"
            + (f": {target.quote}" if target.quote else ""),
        ]
        kpi = transition.kpi
        if kpi is not None and kpi.denominator is not None and target.kpi == "per_tonne":
            energy_unit, product_unit = target.unit.split("/")
            numbers = f"{_number(kpi.numerator)} {energy_unit} / {_number(kpi.denominator)} {product_unit}"
            lines.append(f"= {numbers}")
    if transition.detected_ns:
        late = labels["late"] if transition.late else ""
        lines.append(f"{labels['detected']}: {_local(transition.detected_ns, zone)}{late}")
    if link:
        lines.append(f"{labels['dashboard']}: {link}")
    return "\n".join(lines) + "\n"
