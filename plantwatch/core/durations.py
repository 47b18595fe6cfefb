"""Durations and sizes as people write them: `500ms`, `1s`, `2h`, `1d`; `500MB`, `64MiB`."""

from __future__ import annotations

import math
import re
from typing import Any

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$")
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from '500ms', '1s', '1.5m', '2h', '1d' or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number with ms, s, m or h, like 500ms or 1s")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration like 500ms, 1s, 1m, 2h or 1d")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a finite duration")
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    return seconds


def parse_size(value: Any) -> int:
    """Bytes from '500MB', '1GB', '64MiB' or a bare number of bytes."""
    if isinstance(value, bool):
        raise ValueError("a size is a number with B, KB, MB, GB, KiB, MiB or GiB, like 1GB")
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a size like 500MB or 1GB")
    size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
    if size <= 0:
        raise ValueError("a size must be greater than zero")
    return size
