"""How numbers and times are written for people (mails, reports): one number format per unit,
times in the plant's zone with an explicit UTC offset, header-safe text."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

# Control characters and every other line break Python knows (NEL, LS, PS): none may reach a header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
# One number format per unit: the same decimals for a value, its target and its peak.
DECIMALS = {
    "kWh/t": 0, "kWh/kg": 1, "kgce/t": 1, "mg/m³": 1, "kWh": 0, "kgce": 0, "t": 2, "kg": 1, "%": 1, "t/a": 0,
    "kAh/t": 0, "V": 3,
}  # fmt: skip
# Zones a Chinese reader knows as Beijing time.
BEIJING = frozenset({"Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "PRC"})
TO = {"zh": "至", "en": "to"}


def one_line(text: str) -> str:
    """Header-safe text: control characters (CR, LF) collapse to a space, so no header can be forged."""
    return _CONTROL.sub(" ", text).strip()


def number(value: float | None, unit: str = "") -> str:
    """`value` with thousands separators and the decimals of its unit (2 by default)."""
    if value is None:
        return "-"
    return f"{value:,.{DECIMALS.get(unit, 2)}f}"


def quantity(value: float | None, unit: str) -> str:
    """E.g. `8,625 kWh/t`, `51.7 mg/m³`, `18.0%`."""
    separator = "" if unit == "%" else " "
    return f"{number(value, unit)}{separator}{unit}"


def utc_offset(moment: datetime) -> str:
    """E.g. `UTC+08:00`."""
    offset = moment.strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]}"


def zone_label(zone: ZoneInfo, moment: datetime, lang: str) -> str:
    """`（北京时间，UTC+08:00）` / ` (UTC+08:00)`: how a time says its zone."""
    utc = utc_offset(moment)
    if lang == "zh":
        return f"（北京时间，{utc}）" if zone.key in BEIJING else f"（{utc}）"
    return f" ({utc})"


def local_time(ts_ns: int, zone: ZoneInfo, lang: str) -> str:
    """E.g. `2026-12-02 04:21:36 (UTC+08:00)`; in Chinese `2026-12-02 04:21:36（北京时间，UTC+08:00）`."""
    return local_span(ts_ns, None, zone, lang)


def local_span(start_ns: int, end_ns: int | None, zone: ZoneInfo, lang: str) -> str:
    """A time, or a window `start to end`, in `zone` with its UTC offset said once."""
    moment = datetime.fromtimestamp(start_ns / 1e9, zone)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if end_ns is not None:
        end = datetime.fromtimestamp(end_ns / 1e9, zone).strftime("%Y-%m-%d %H:%M:%S")
        text += f" {TO[lang]} {end}"
    return text + zone_label(zone, moment, lang)


def duration(ns: int, lang: str) -> str:
    """E.g. `2 h 5 min` / `2小时5分钟`; days when it is that long."""
    minutes = max(0, round(ns / 60e9))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if lang == "zh":
        parts = [f"{days}天" if days else "", f"{hours}小时" if hours or days else "", f"{minutes}分钟"]
        return "".join(parts)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours or days else "", f"{minutes} min"]
    return " ".join(p for p in parts if p)
