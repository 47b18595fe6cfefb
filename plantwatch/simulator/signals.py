"""Signal models: what each simulated field is worth at simulated time t (seconds), deterministically.

Values are closed-form functions of t, so a counter is the exact integral of the rate it
counts (energy of power, coal burnt of coal feed) however often the simulator is read.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field


def noise(seed: int, key: str, n: int) -> float:
    """Deterministic pseudo-random number in [-1, 1] for (seed, key, n)."""
    h = zlib.crc32(f"{seed}:{key}:{n}".encode())
    return (h / 0xFFFFFFFF) * 2 - 1


@dataclass(frozen=True)
class Level:
    """A rate or level: mean + a slow sine wave + per-second noise (all in the field's unit)."""

    mean: float
    amplitude: float = 0.0
    period: float = 3600.0
    jitter: float = 0.0

    def smooth(self, t: float) -> float:
        """The noiseless part, which counters integrate."""
        return self.mean + self.amplitude * math.sin(2 * math.pi * t / self.period)

    def integral(self, t: float) -> float:
        """Integral of `smooth` from 0 to t (unit × seconds)."""
        w = 2 * math.pi / self.period
        return self.mean * t + self.amplitude * (1 - math.cos(w * t)) / w

    def value(self, t: float, seed: int, key: str) -> float:
        """Value at time t."""
        return self.smooth(t) + self.jitter * noise(seed, key, int(t))


@dataclass(frozen=True)
class Excursions(Level):
    """A level that rises by `height` for `length` seconds once every `every` seconds (dust)."""

    every: float = 5 * 3600.0
    length: float = 40 * 60.0
    height: float = 0.0

    def value(self, t: float, seed: int, key: str) -> float:
        """Value at time t, with the excursion ramped in and out."""
        base = super().value(t, seed, key)
        phase = (t % self.every) / self.length
        if phase < 1:
            return base + self.height * math.sin(math.pi * phase)
        return base


@dataclass(frozen=True)
class Integral:
    """A cumulative counter: `start` + `factor` × integral of another field's Level."""

    of: str
    factor: float
    start: float = 0.0


@dataclass(frozen=True)
class Taps:
    """Batch production: a tap every `period` s weighing `mean` ± `spread` (a share of mean).

    `output` picks what the field shows: the last tap's weight, the tap count, or the total.
    """

    period: float
    mean: float
    spread: float = 0.05
    output: str = "weight"
    start_total: float = 0.0
    # running totals per seed: the profile is shared by every simulated device of a model
    _totals: dict[int, list[float]] = field(default_factory=dict, compare=False, repr=False)

    def weight(self, n: int, seed: int) -> float:
        """Weight of tap number n (1-based)."""
        return self.mean * (1 + self.spread * noise(seed, "tap", n))

    def value(self, t: float, seed: int) -> float:
        """The chosen output at time t."""
        n = int(t // self.period)
        if self.output == "count":
            return float(n)
        if self.output == "weight":
            return self.weight(n, seed) if n > 0 else 0.0
        totals = self._totals.setdefault(seed, [0.0])
        while len(totals) <= n:
            totals.append(totals[-1] + self.weight(len(totals), seed))
        return self.start_total + totals[n]


@dataclass(frozen=True)
class Constant:
    """A fixed value (status bits, text)."""

    value: float | bool | str


@dataclass(frozen=True)
class Flag:
    """CEMS data flag: 'N', except `flag` for `length` s once every `every` s."""

    every: float = 24 * 3600.0
    length: float = 30 * 60.0
    flag: str = "M"

    def value(self, t: float) -> str:
        """Flag at time t."""
        return self.flag if (t % self.every) >= self.every - self.length else "N"


Signal = Level | Excursions | Integral | Taps | Constant | Flag


def evaluate(
    signals: dict[str, Signal], name: str, t: float, seed: int, clock_t: float | None = None
) -> float | bool | str:
    """Value of field `name` at simulated time t. Events of the day (dust excursions, maintenance
    flags) follow the device's clock, `clock_t` (seconds since 1970; default t), so an excursion
    starts on one of the device's hours, as the hourly averages it is judged by."""
    sig = signals[name]
    at = t if clock_t is None else clock_t
    if isinstance(sig, Constant):
        return sig.value
    if isinstance(sig, Flag):
        return sig.value(at)
    if isinstance(sig, Excursions):
        return sig.value(at, seed, name)
    if isinstance(sig, Taps):
        return sig.value(t, seed)
    if isinstance(sig, Integral):
        source = signals[sig.of]
        if not isinstance(source, Level):
            raise TypeError(f"{name}: can only integrate a Level, not {type(source).__name__}")
        return sig.start + sig.factor * source.integral(t)
    return sig.value(t, seed, name)
