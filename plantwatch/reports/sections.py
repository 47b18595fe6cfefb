"""What a report says, in one language: its header lines, its tables and its notes, shared by the
HTML, PDF and mail renderings (a zh report is entirely Chinese, an en report entirely English)."""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from plantwatch.config.targets import Target
from plantwatch.config.wording import COMPARATOR, SEVERITY, citation, window_name
from plantwatch.core.text import local_span, local_time, number, quantity
from plantwatch.reports.model import MEAN, MONTH_WINDOW, Report, TargetRow

WORDS = {
    "zh": {
        "report": "{plant}能耗与排放合规月报（{period}）",
        "digest": "{plant}能耗与排放日报（{period}）",
        "plant": "企业",
        "period": "统计期间",
        "up_to": "数据截至",
        "open": "本期尚未结束，数值截至上述时间",
        "generated": "生成时间",
        "times": "时间口径",
        "event_time": "事件时间（设备测量时刻），窗口按结束时刻归入统计期间",
        "per_tonne": "单位产品能耗",
        "dust": "颗粒物小时均值（HJ 75）",
        "availability": "数据完整率",
        "fired": "告警",
        "plans": "依据",
        "device": "设备",
        "indicator": "指标",
        "target": "目标",
        "value": "本期值",
        "calculation": "计算",
        "windows_over": "超标窗口/窗口数",
        "days_over": "超标天数",
        "worst": "最差窗口",
        "projection": "期末预测",
        "verdict": "结论",
        "limit": "限值",
        "hours": "小时数",
        "valid_hours": "有效小时",
        "breach_hours": "超标小时",
        "highest": "最高小时均值",
        "mean": "有效小时均值",
        "share": "有数据的小时占比",
        "rule": "规则",
        "severity": "级别",
        "count": "次数",
        "met": "达标",
        "exceeded": "超标",
        "no_data": "无数据",
        "none": "无",
        "month_window": "自然月窗口",
        "mean_of": "实时值均值",
        "at_this_rate": "{device} {indicator}：按近7天的速率，{period}将收于 {value}（目标 {target}）",
        "this_month": "本月",
        "this_day": "当日",
        "stale": "数据中断",
        "chart_daily": "{device} {indicator}：每日值与目标",
        "chart_hourly": "{device} {indicator}：小时均值与限值",
        "basis": (
            "单位产品能耗 = 统计期间内各窗口能耗之和 ÷ 产量之和（按方案口径）；"
            "颗粒物小时均值有效分钟不少于45分钟方为有效。"
        ),
    },
    "en": {
        "report": "{plant}: energy and emissions compliance report, {period}",
        "digest": "{plant}: energy and emissions digest, {period}",
        "plant": "Plant",
        "period": "Period",
        "up_to": "Data up to",
        "open": "the period is still open; values are up to the time above",
        "generated": "Generated",
        "times": "Times",
        "event_time": (
            "event time (when the device measured); a window counts in the period its end falls in"
        ),
        "per_tonne": "Energy per tonne",
        "dust": "Dust hourly averages (HJ 75)",
        "availability": "Data availability",
        "fired": "Alerts",
        "plans": "Plans",
        "device": "Device",
        "indicator": "Indicator",
        "target": "Target",
        "value": "Value",
        "calculation": "Calculation",
        "windows_over": "Windows over / windows",
        "days_over": "Days over",
        "worst": "Worst window",
        "projection": "Projection",
        "verdict": "Verdict",
        "limit": "Limit",
        "hours": "Hours",
        "valid_hours": "Valid hours",
        "breach_hours": "Breach hours",
        "highest": "Highest hour",
        "mean": "Mean of valid hours",
        "share": "Hours with data",
        "rule": "Rule",
        "severity": "Severity",
        "count": "Count",
        "met": "met",
        "exceeded": "exceeded",
        "no_data": "no data",
        "none": "none",
        "month_window": "calendar-month window",
        "mean_of": "mean of live values",
        "at_this_rate": (
            "{device} {indicator}: at the last 7 days' rate {period} closes at {value} (target {target})"
        ),
        "this_month": "the month",
        "this_day": "the day",
        "stale": "no data",
        "chart_daily": "{device} {indicator}: daily values against the target",
        "chart_hourly": "{device} {indicator}: hourly averages against the limit",
        "basis": (
            "Energy per tonne = the period's total energy ÷ its total product over the closed windows, "
            "as the plans define it; a dust hour is valid with at least 45 valid minutes."
        ),
    },
}


@dataclass(frozen=True)
class Table:
    """A titled table of text cells."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    empty: str  # what stands in an empty table ("无" / "none")


@dataclass(frozen=True)
class Chart:
    """A chart to draw: its caption and the name it is stored under (see reports/charts.py)."""

    name: str
    caption: str


@dataclass
class Sections:
    """A report in one language, ready for any format."""

    title: str
    header: list[tuple[str, str]]
    tables: list[Table]
    notes: list[str]  # projections and the calculation basis
    charts: list[Chart] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)
    plans_title: str = ""
    exceeded: str = ""  # the verdict word of a breach, which renderings mark


def chart_name(device: str, target_id: str) -> str:
    """The name a row's chart is stored under."""
    return f"{device}-{target_id}"


def sections(report: Report, lang: str, zone: ZoneInfo, kind: str = "report") -> Sections:
    """The words of `report` in `lang` (`kind` "report" or "digest" picks the title)."""
    words = WORDS[lang]
    period = report.period
    name = report.names[lang]
    header = [
        (words["plant"], f"{name} ({report.plant})"),
        (words["period"], local_span(period.start_ns, period.end_ns, zone, lang)),
        (words["generated"], local_time(report.generated_ns, zone, lang)),
        (words["times"], words["event_time"]),
    ]
    if report.is_open:
        header.insert(
            2,
            (
                words["up_to"],
                f"{local_time(report.covered_end_ns, zone, lang)}；{words['open']}"
                if lang == "zh"
                else f"{local_time(report.covered_end_ns, zone, lang)}; {words['open']}",
            ),
        )
    tables = [
        _per_tonne(report, lang),
        _dust(report, lang),
        _availability(report, lang),
        _fired(report, lang),
    ]
    notes = [
        words["at_this_rate"].format(
            device=row.device,
            indicator=row.target.indicator(lang),
            value=quantity(row.projection, row.target.unit),
            target=f"{COMPARATOR[row.target.comparator]} {quantity(row.limit, row.target.unit)}",
            period=words["this_month" if period.kind == "month" else "this_day"],
        )
        for row in report.targets
        if row.projection is not None
    ]
    notes.append(words["basis"])
    charts = [
        Chart(
            chart_name(row.device, row.target.id),
            words["chart_daily"].format(device=row.device, indicator=row.target.indicator(lang)),
        )
        for row in report.targets
        if any(d.value is not None for d in row.daily)
    ] + [
        Chart(
            chart_name(row.device, row.target.id),
            words["chart_hourly"].format(device=row.device, indicator=row.target.indicator(lang)),
        )
        for row in report.dust
        if row.valid_hours
    ]
    title = words[kind].format(plant=name, period=period.title(lang))
    return Sections(
        title, header, tables, notes, charts, _plans(report, lang), words["plans"], words["exceeded"]
    )


def _verdict(row_value: float | None, breaches: bool, lang: str) -> str:
    words = WORDS[lang]
    if row_value is None:
        return words["no_data"]
    return words["exceeded"] if breaches else words["met"]


def _target(target: Target) -> str:
    return f"{COMPARATOR[target.comparator]} {quantity(target.value, target.unit)}"


def _calculation(row: TargetRow, lang: str) -> str:
    words = WORDS[lang]
    if row.basis == MONTH_WINDOW:
        return words["month_window"]
    if row.basis == MEAN:
        return words["mean_of"]
    if row.energy is None or not row.product:
        return "-"
    if "/" not in row.target.unit:  # a share: tonnes over tonnes
        return f"{quantity(row.energy, 't')} ÷ {quantity(row.product, 't')}"
    energy_unit, product_unit = row.target.unit.split("/")
    return f"{quantity(row.energy, energy_unit)} ÷ {quantity(row.product, product_unit)}"


def _per_tonne(report: Report, lang: str) -> Table:
    words = WORDS[lang]
    headers = [
        words[k]
        for k in (
            "device",
            "indicator",
            "target",
            "value",
            "calculation",
            "windows_over",
            "days_over",
            "worst",
            "projection",
            "verdict",
        )
    ]
    rows = [
        [
            row.device,
            f"{row.target.indicator(lang)}（{window_name(row.target, row.target.id, lang)}）"
            if lang == "zh"
            else f"{row.target.indicator(lang)} ({window_name(row.target, row.target.id, lang)})",
            _target(row.target),
            quantity(row.value, row.target.unit) if row.value is not None else "-",
            _calculation(row, lang),
            f"{row.windows_over} / {row.windows}",
            str(row.days_over),
            quantity(row.worst, row.target.unit) if row.worst is not None else "-",
            quantity(row.projection, row.target.unit) if row.projection is not None else "-",
            _verdict(row.value, row.breaches(row.value), lang),
        ]
        for row in report.targets
    ]
    return Table(words["per_tonne"], headers, rows, words["none"])


def _dust(report: Report, lang: str) -> Table:
    words = WORDS[lang]
    headers = [
        words[k]
        for k in ("device", "limit", "hours", "valid_hours", "breach_hours", "highest", "mean", "verdict")
    ]
    rows = [
        [
            row.device,
            _target(row.target),
            str(row.hours),
            str(row.valid_hours),
            str(row.breach_hours),
            quantity(row.highest, row.target.unit) if row.highest is not None else "-",
            quantity(row.mean, row.target.unit) if row.mean is not None else "-",
            _verdict(row.mean if row.valid_hours else None, row.breach_hours > 0, lang),
        ]
        for row in report.dust
    ]
    return Table(words["dust"], headers, rows, words["none"])


def _availability(report: Report, lang: str) -> Table:
    words = WORDS[lang]
    rows = [
        [device, f"{number(share * 100, '%')}%" if share is not None else "-"]
        for device, share in sorted(report.availability.items())
    ]
    return Table(words["availability"], [words["device"], words["share"]], rows, words["none"])


def _fired(report: Report, lang: str) -> Table:
    words = WORDS[lang]
    targets = {row.target.id: row.target for row in report.targets} | {
        row.target.id: row.target for row in report.dust
    }
    rows = []
    for fired in report.fired:
        target = targets.get(fired.rule.partition(":")[0])
        if fired.rule == "stale" or target is None:
            rule = words["stale"] if fired.rule == "stale" else fired.rule
        else:
            rule = f"{target.indicator(lang)} · {window_name(target, fired.rule, lang)}"
        rows.append(
            [fired.device, rule, SEVERITY[lang].get(fired.severity, fired.severity), str(fired.count)]
        )
    return Table(
        words["fired"],
        [words["device"], words["rule"], words["severity"], words["count"]],
        rows,
        words["none"],
    )


def _plans(report: Report, lang: str) -> list[str]:
    colon = "：" if lang == "zh" else ": "
    seen: dict[str, str] = {}
    for target in [row.target for row in report.targets] + [row.target for row in report.dust]:
        seen.setdefault(target.id, f"{target.indicator(lang)}{colon}{citation(target, lang)}")
    return list(seen.values())
