"""How plan targets are named for readers, in Chinese and English: severities, comparators, data
flags and windows (出铁, 小时均值, 滚动15分钟均值, 自然月…)."""

from __future__ import annotations

from plantwatch.config.targets import Target
from plantwatch.core.durations import parse_duration

SEVERITY = {
    "zh": {"info": "提示", "warning": "警告", "critical": "严重"},
    "en": {"info": "info", "warning": "warning", "critical": "critical"},
}
COMPARATOR = {"<=": "≤", "<": "<", ">=": "≥", ">": ">"}
FLAGS = {
    "zh": {"M": "维护", "C": "校准", "F": "停运", "D": "故障"},
    "en": {"M": "maintenance", "C": "calibration", "F": "stopped", "D": "fault"},
}
# The name of a per-tap window in each sector: a ferroalloy tap, a steel heat, a polysilicon batch.
TAP_NAMES = {
    "ferroalloy": {"zh": "每次出铁", "en": "per tap"},
    "steel": {"zh": "每炉次", "en": "per heat"},
    "polysilicon": {"zh": "每批次", "en": "per batch"},
}
WINDOW_NAMES = {
    "zh": {
        "live": "实时",
        "shift": "班",
        "day": "日",
        "month": "月",
        "year": "年",
        "hour": "小时均值",
        "early": "滚动15分钟均值",
        "projection": "月末预测（按近7天速率）",
    },
    "en": {
        "live": "live",
        "shift": "shift",
        "day": "day",
        "month": "month",
        "year": "year",
        "hour": "hourly average",
        "early": "rolling 15-minute average",
        "projection": "month-end projection (at the last 7 days' rate)",
    },
}
JUDGED_NAMES = {
    "zh": {"shift": "班次", "day": "自然日", "month": "自然月", "year": "自然年"},
    "en": {"shift": "shift", "day": "calendar day", "month": "calendar month", "year": "calendar year"},
}


def window_name(target: Target, rule_id: str, lang: str) -> str:
    """What the window of a rule's values is called: 每次出铁, 小时均值, 滚动15分钟均值, 日, 月…"""
    if rule_id.endswith(":early"):
        return WINDOW_NAMES[lang]["early"]
    if rule_id.endswith(":projection"):
        return WINDOW_NAMES[lang]["projection"]
    judged = rule_id.rpartition(":")[2] if ":" in rule_id else None
    if judged in JUDGED_NAMES[lang]:  # the calendar window regulators judge a per-tonne target over
        return JUDGED_NAMES[lang][judged]
    if target.kpi == "dust_hourly":
        return WINDOW_NAMES[lang]["hour"]
    if target.window == "tap":
        return TAP_NAMES.get(target.sector, TAP_NAMES["ferroalloy"])[lang]
    if target.window in WINDOW_NAMES[lang]:
        return WINDOW_NAMES[lang][target.window]
    return rolling_name(parse_duration(target.window), lang)


def rolling_name(seconds: float, lang: str) -> str:
    """A rolling window in whole hours, else minutes, else seconds: 滚动24小时 / rolling 24 h,
    滚动30分钟 / rolling 30 min."""
    size, zh, en = next(
        (u for u in ((3600, "小时", "h"), (60, "分钟", "min")) if seconds % u[0] == 0), (1, "秒", "s")
    )
    amount = f"{seconds / size:g}"
    return f"滚动{amount}{zh}" if lang == "zh" else f"rolling {amount} {en}"


def citation(target: Target, lang: str) -> str:
    """The plan as a document, the clause, and the plan's words."""
    quote = target.quote(lang)
    if lang == "zh":
        return f"{target.plan.cite('zh')}{target.clause('zh')}" + (f"：“{quote}”" if quote else "")
    return f"{target.plan.cite('en')}, {target.clause('en')}" + (f': "{quote}"' if quote else "")
