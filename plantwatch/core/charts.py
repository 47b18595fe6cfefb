"""Charts for people (mails and reports): a KPI over its recent windows against its limit, drawn with
matplotlib's Agg renderer (no display, no pyplot state, safe in a worker thread).

The charts carry numbers, dates and unit symbols only, so one picture serves a Chinese and an
English reader alike; the words around it are the mail's or the report's.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

BREACH = "#c0392b"
NORMAL = "#2e86c1"
LIMIT = "#7f8c8d"
DOTS = 100  # up to this many values, each gets a dot


@dataclass(frozen=True)
class Point:
    """One window's value: [start_ns, end_ns) and the value (None: no valid value)."""

    start_ns: int
    end_ns: int
    value: float | None


def _figure(width: float, height: float) -> tuple[Any, Any]:
    from matplotlib.figure import Figure  # about a second to import: only when a chart is drawn

    figure = Figure(figsize=(width, height), dpi=100)
    axes = figure.add_subplot()
    axes.grid(axis="y", color="#e5e5e5", linewidth=0.8)
    axes.spines[["top", "right"]].set_visible(False)
    return figure, axes


def _png(figure: Any) -> bytes:
    out = io.BytesIO()
    figure.subplots_adjust(left=0.1, right=0.98, top=0.95, bottom=0.2)
    figure.savefig(out, format="png", dpi=100)
    return out.getvalue()


def kpi_chart(
    points: Sequence[Point],
    *,
    limit: float | None,
    lower_is_better: bool,
    unit: str,
    zone: ZoneInfo,
    shade: tuple[int, int] | None = None,
    bars: bool = False,
    size: tuple[float, float] = (6.4, 2.6),
    time_format: str = "%m-%d\n%H:%M",
) -> bytes:
    """A PNG: each window's value at its end (bars for calendar days), the limit as a dashed line,
    values on the wrong side of it in red, and `shade` ([start_ns, end_ns), e.g. the breach
    episode) as a band."""
    import matplotlib.dates as mdates

    figure, axes = _figure(*size)
    valid = [p for p in points if p.value is not None]
    times = [datetime.fromtimestamp(p.end_ns / 1e9, zone) for p in valid]
    values = [float(p.value) for p in valid]  # type: ignore[arg-type]

    def breaching(value: float) -> bool:
        return limit is not None and (value > limit if lower_is_better else value < limit)

    colours = [BREACH if breaching(v) else NORMAL for v in values]
    if bars and valid:
        widths = [(p.end_ns - p.start_ns) / 86400e9 * 0.8 for p in valid]
        starts = [datetime.fromtimestamp(p.start_ns / 1e9, zone) for p in valid]
        axes.bar(starts, values, width=widths, align="edge", color=colours)
    elif valid:
        axes.plot(times, values, color=NORMAL, linewidth=1.2 if len(valid) <= DOTS else 0.8, zorder=2)
        if len(valid) > DOTS:  # a month of hours: dots only where the limit is broken
            marked = [(t, v) for t, v, c in zip(times, values, colours, strict=True) if c == BREACH]
            times, values, colours = [t for t, _ in marked], [v for _, v in marked], [BREACH] * len(marked)
        axes.scatter(times, values, c=colours, s=14, zorder=3)
    if limit is not None:
        axes.axhline(limit, color=LIMIT, linestyle="--", linewidth=1.2, zorder=1)
        axes.annotate(
            f"{limit:,.{_decimals(limit)}f} {unit}",
            xy=(1, limit),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 3),
            textcoords="offset points",
            ha="right",
            fontsize=8,
            color=LIMIT,
        )
    if shade is not None:
        axes.axvspan(
            datetime.fromtimestamp(shade[0] / 1e9, zone),
            datetime.fromtimestamp(shade[1] / 1e9, zone),
            color=BREACH,
            alpha=0.12,
            zorder=0,
        )
    axes.set_ylabel(unit, fontsize=9)
    axes.xaxis.set_major_formatter(mdates.DateFormatter(time_format, tz=zone))
    axes.tick_params(labelsize=8)
    if values and limit is not None:
        low, high = min([*values, limit]), max([*values, limit])
        margin = (high - low) * 0.15 or abs(high) * 0.1 or 1
        axes.set_ylim(low - margin if low - margin > 0 or low < 0 else 0, high + margin)
    return _png(figure)


def _decimals(value: float) -> int:
    return 0 if abs(value) >= 100 else 1
