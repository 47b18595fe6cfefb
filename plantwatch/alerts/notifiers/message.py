"""The words of an alert mail, in one language: subject and plain-text body, built from one transition.

A zh mail is entirely Chinese and an en mail entirely English; what both share are identifiers
(plant and device ids), numbers, unit symbols, URLs and, in English, the Chinese title of the
plan beside its translation. Every time carries the plant's zone as an explicit UTC offset.
"""

from __future__ import annotations

from html import escape
from zoneinfo import ZoneInfo

from plantwatch.alerts.kpi.value import KpiValue
from plantwatch.alerts.lifecycle import STALE, Alert, Transition
from plantwatch.config.targets import Target
from plantwatch.config.wording import COMPARATOR, FLAGS, SEVERITY, citation, window_name
from plantwatch.core.text import duration, local_span, local_time, number, one_line, quantity

SUBJECT_TAG = {
    "zh": {"firing": "【告警】", "resolved": "【恢复】", "repeat": "【持续告警】"},
    "en": {"firing": "[FIRING]", "resolved": "[RESOLVED]", "repeat": "[STILL FIRING]"},
}
EARLY_TAG = {
    "zh": {"firing": "【预警】", "resolved": "【预警解除】", "repeat": "【持续预警】"},
    "en": {
        "firing": "[EARLY WARNING]",
        "resolved": "[EARLY WARNING CLEARED]",
        "repeat": "[EARLY WARNING, STILL]",
    },
}
LABELS = {
    "zh": {
        "plant": "企业",
        "device": "设备",
        "indicator": "指标",
        "severity": "级别",
        "value": "当前值",
        "target": "目标",
        "window": "统计窗口",
        "calculation": "计算",
        "pot_voltage": "槽电压",
        "current_efficiency": "电流效率",
        "energy": "能耗",
        "emitted": "排放量",
        "water": "耗水量",
        "production": "产量",
        "detected": "发现时间",
        "started": "超标开始",
        "resolved_at": "恢复时间",
        "duration": "持续时长",
        "peak": "峰值",
        "plan": "依据",
        "dashboard": "仪表盘",
        "stale": "无数据（仪表停止上报）",
        "last_good": "最后一次有效数据",
        "late": "（数据迟到：统计窗口结束后才收到）",
        "to": "至",
        "hourly": "小时均值",
        "corrected": "（已按基准氧含量折算）",
        "valid_minutes": "有效分钟",
        "excluded": "按数据标记剔除",
        "invalid": "数据无效",
        "missing": "无数据",
        "correction": "氧含量折算",
        "measured_mean": "实测浓度均值",
        "o2_measured": "实测氧含量均值",
        "o2_reference": "基准氧含量",
        "formula": "每分钟 C折 = C实 × (21 − {ref}) ÷ (21 − O₂实)",
        "early_value": "滚动15分钟均值",
        "early_line": "预警线",
        "early_rule": "{line}（限值 {limit} 的 {share}）",
        "early_suffix": "（预警）",
    },
    "en": {
        "plant": "Plant",
        "device": "Device",
        "indicator": "Indicator",
        "severity": "Severity",
        "value": "Value",
        "target": "Target",
        "window": "Window",
        "calculation": "Calculation",
        "pot_voltage": "pot voltage",
        "current_efficiency": "current efficiency",
        "energy": "energy",
        "emitted": "emitted",
        "water": "water used",
        "production": "production",
        "detected": "Detected",
        "started": "Breach started",
        "resolved_at": "Resolved at",
        "duration": "Duration",
        "peak": "Peak",
        "plan": "Source",
        "dashboard": "Dashboard",
        "stale": "no readings (the meter stopped reporting)",
        "last_good": "Last good data",
        "late": " (late data: received after the window ended)",
        "to": "to",
        "hourly": "Hourly average",
        "corrected": " (corrected to the reference O₂)",
        "valid_minutes": "Valid minutes",
        "excluded": "excluded by data flag",
        "invalid": "invalid data",
        "missing": "no data",
        "correction": "O₂ correction",
        "measured_mean": "measured mean",
        "o2_measured": "measured O₂ mean",
        "o2_reference": "reference O₂",
        "formula": "each minute C_ref = C × (21 − {ref}) ÷ (21 − O₂)",
        "early_value": "Rolling 15-minute average",
        "early_line": "Early-warning line",
        "early_rule": "{line} ({share} of the {limit} limit)",
        "early_suffix": " (early warning)",
        "rule": "Rule",
    },
}


def subject(transition: Transition, plant: str, lang: str) -> str:
    """E.g. `[FIRING] works saf-1: ferrosilicon unit power consumption 8,625 kWh/t (target ≤ 7,800 kWh/t)`."""
    alert, rule = transition.alert, transition.rule
    early = rule.id.endswith(":early")
    tag = (EARLY_TAG if early else SUBJECT_TAG)[lang][transition.event]
    colon = "：" if lang == "zh" else ": "
    if rule.target is None:
        return one_line(f"{tag} {plant} {alert.device}{colon}{LABELS[lang]['stale']}")
    target = rule.target
    value = quantity(alert.value, target.unit)
    bound = f"{COMPARATOR[target.comparator]} {quantity(rule.limit, target.unit)}"
    indicator = target.indicator(lang)
    if target.kpi == "dust_hourly":  # an hourly average or a rolling 15-minute one: say which
        indicator += ("" if lang == "zh" else ", ") + window_name(target, rule.id, lang)
    elif rule.id != target.id:  # judged over a calendar window: say which
        name = window_name(target, rule.id, lang)
        indicator += f"（{name}）" if lang == "zh" else f", {name}"
    if lang == "zh":
        what = "预警线" if early else "目标"
        return one_line(f"{tag} {plant} {alert.device}：{indicator} {value}（{what} {bound}）")
    what = "early-warning line" if early else "target"
    return one_line(f"{tag} {plant} {alert.device}: {indicator} {value} ({what} {bound})")


def body(
    transition: Transition, plant: str, plant_name: str, lang: str, zone: ZoneInfo, link: str | None
) -> str:
    """The plain-text body: every number a regulator needs, labelled, and where the limit comes from."""
    alert, rule, labels = transition.alert, transition.rule, LABELS[lang]
    colon = "：" if lang == "zh" else ": "

    def line(label: str, text: str) -> str:
        return f"{labels[label]}{colon}{text}"

    def when(ts_ns: int) -> str:
        return local_time(ts_ns, zone, lang)

    lines = [
        line("plant", f"{plant_name}（{plant}）" if lang == "zh" else f"{plant_name} ({plant})"),
        line("device", alert.device),
    ]
    target = rule.target
    if target is None or rule.id == STALE:
        lines += [line("indicator", labels["stale"]), line("severity", SEVERITY[lang][alert.severity])]
        lines.append(line("last_good", when(alert.episode_start_ns or alert.since_ns)))
        if transition.event == "resolved":
            lines += _resolution(alert, None, lang, zone)
    else:
        early = rule.id.endswith(":early")
        indicator = target.indicator(lang) + (labels["early_suffix"] if early else "")
        lines += [line("indicator", indicator), line("severity", SEVERITY[lang][alert.severity])]
        span = local_span(alert.window_start_ns, alert.window_end_ns, zone, lang)
        window = line("window", f"{window_name(target, rule.id, lang)}{'，' if lang == 'zh' else ', '}{span}")
        lines += _value_lines(transition, target, lang, window)
        if transition.event == "resolved":
            lines += _resolution(alert, target, lang, zone)
        elif transition.event == "repeat":
            lines.append(line("started", when(alert.episode_start_ns or alert.since_ns)))
            lines.append(line("duration", duration(alert.window_end_ns - _episode_start(alert), lang)))
            lines.append(line("peak", quantity(alert.peak, target.unit)))
        lines.append(line("plan", citation(target, lang)))
    if transition.detected_ns:
        late = labels["late"] if transition.late else ""
        lines.append(line("detected", when(transition.detected_ns) + late))
    if link:
        lines.append(line("dashboard", link))
    if lang == "en":
        lines.append(line("rule", rule.id))
    return "\n".join(lines) + "\n"


def _episode_start(alert: Alert) -> int:
    return alert.episode_start_ns or alert.since_ns


def _resolution(alert: Alert, target: Target | None, lang: str, zone: ZoneInfo) -> list[str]:
    """Resolved-at, how long the episode lasted, and its peak."""
    labels, colon = LABELS[lang], "：" if lang == "zh" else ": "
    resolved_at = alert.window_end_ns
    out = [
        f"{labels['started']}{colon}{local_time(_episode_start(alert), zone, lang)}",
        f"{labels['resolved_at']}{colon}{local_time(resolved_at, zone, lang)}",
        f"{labels['duration']}{colon}{duration(resolved_at - _episode_start(alert), lang)}",
    ]
    if target is not None and alert.peak is not None:
        out.append(f"{labels['peak']}{colon}{quantity(alert.peak, target.unit)}")
    return out


def _value_lines(transition: Transition, target: Target, lang: str, window: str) -> list[str]:
    """The value, the target it is held to, the window, and the arithmetic behind the value."""
    alert, rule, kpi = transition.alert, transition.rule, transition.kpi
    labels, colon = LABELS[lang], "：" if lang == "zh" else ": "
    unit = target.unit
    if rule.id.endswith(":early"):
        assert target.early_warning is not None
        valid = f"{labels['valid_minutes']} {round(kpi.numerator or 0) if kpi else '-'}/15"
        share = f"{target.early_warning:.0%}"
        rule_text = labels["early_rule"].format(
            limit=quantity(target.value, unit), share=share, line=quantity(rule.limit, unit)
        )
        wrap = ("（", "）") if lang == "zh" else (" (", ")")
        return [
            f"{labels['early_value']}{colon}{quantity(alert.value, unit)}{wrap[0]}{valid}{wrap[1]}",
            f"{labels['early_line']}{colon}{rule_text}",
            window,
        ]
    if target.kpi == "dust_hourly":
        corrected = kpi is not None and dict(kpi.details).get("o2_reference") is not None
        value = f"{labels['hourly']}{colon}{quantity(alert.value, unit)}"
        out = [value + (labels["corrected"] if corrected else "")]
    else:
        out = [f"{labels['value']}{colon}{quantity(alert.value, unit)}"]
    out.append(f"{labels['target']}{colon}{COMPARATOR[target.comparator]} {quantity(rule.limit, unit)}")
    out.append(window)
    if kpi is None:
        return out
    if target.kpi == "per_tonne" and kpi.numerator is not None and kpi.denominator is not None:
        energy_unit, product_unit = unit.split("/")
        what = {"kg": "emitted", "m³": "water"}.get(energy_unit, "energy")  # kWh and kgce: energy
        energy = f"{labels[what]} {quantity(kpi.numerator, energy_unit)}"
        product = f"{labels['production']} {number(kpi.denominator, 't')} {product_unit}"
        out.append(f"{labels['calculation']}{colon}{energy} ÷ {product} = {quantity(kpi.value, unit)}")
    if target.kpi == "potline_live" and kpi.details:  # W = 2980 kAh/t × V ÷ CE
        d = dict(kpi.details)
        out.append(
            f"{labels['calculation']}{colon}{number(d['kah_per_tonne'], 'kAh/t')} kAh/t × "
            f"{labels['pot_voltage']} {number(d['pot_voltage'], 'V')} V ÷ {labels['current_efficiency']} "
            f"{number(d['current_efficiency'], '%')}% = {quantity(kpi.value, unit)}"
        )
    if target.kpi == "dust_hourly":
        out += _dust_lines(kpi, unit, lang)
    return out


def _dust_lines(kpi: KpiValue, unit: str, lang: str) -> list[str]:
    """Valid minutes of the hour and why the others do not count; the O2 correction applied."""
    labels, colon = LABELS[lang], "：" if lang == "zh" else ": "
    details = dict(kpi.details)
    valid = round(kpi.numerator or 0)
    excluded = [
        (
            f"{FLAGS[lang].get(key[5:], key[5:])}（{key[5:]}）{round(n)}"
            if lang == "zh"
            else f"{FLAGS[lang].get(key[5:], key[5:])} ({key[5:]}) {round(n)}"
        )
        for key, n in sorted(details.items())
        if key.startswith("flag_") and n
    ]
    separator = "、" if lang == "zh" else ", "
    others = []
    if excluded:
        others.append(f"{labels['excluded']}{'：' if lang == 'zh' else ': '}{separator.join(excluded)}")
    for key in ("invalid", "missing"):
        if details.get(key):
            others.append(f"{labels[key]} {round(details[key])}")
    text = f"{labels['valid_minutes']}{colon}{valid}/60"
    if others:
        joined = ("；" if lang == "zh" else "; ").join(others)
        text += f"（{joined}）" if lang == "zh" else f" ({joined})"
    out = [text]
    if "o2_reference" in details:
        reference = quantity(details["o2_reference"], "%")
        parts = [
            f"{labels['measured_mean']} {quantity(details.get('raw'), unit)}",
            f"{labels['o2_measured']} {quantity(details.get('o2'), '%')}",
            f"{labels['o2_reference']} {reference}",
            labels["formula"].format(ref=number(details["o2_reference"], "%")),
        ]
        out.append(f"{labels['correction']}{colon}{('，' if lang == 'zh' else ', ').join(parts)}")
    return out


def html_body(title: str, text: str, chart_cid: str | None) -> str:
    """The plain-text body as an HTML table (a row per `label: value` line), the chart below it."""
    rows = []
    for line in text.splitlines():
        label, colon, value = line.partition("：") if "：" in line.split(" ")[0] else line.partition(": ")
        if not colon:
            label, value = "", line
        rows.append(
            f'<tr><th style="text-align:left;padding:2px 12px 2px 0;vertical-align:top;white-space:nowrap">'
            f"{escape(label)}</th><td>{_linked(value)}</td></tr>"
        )
    chart = f'<p><img src="cid:{escape(chart_cid)}" alt="" width="640"></p>' if chart_cid else ""
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
        '<body style="font-family:sans-serif;font-size:14px">'
        f"<h3>{escape(title)}</h3><table>{''.join(rows)}</table>{chart}</body></html>"
    )


def _linked(value: str) -> str:
    if value.startswith(("http://", "https://")):
        return f'<a href="{escape(value)}">{escape(value)}</a>'
    return escape(value)
