"""The `hj212` section of plant.yaml: the environmental platforms plantwatch reports stack data to
over HJ 212-2017, and what each gets (docs/hj212.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from plantwatch.config.units import Duration, Strict
from plantwatch.contract.hj212 import KNOWN_CODES, MN_PATTERN

MINUTE_PERIODS = (60.0, 300.0, 600.0, 900.0)  # minute data: every 1, 5, 10 or 15 minutes


def _known_code(code: str) -> str:
    if code not in KNOWN_CODES:
        known = ", ".join(f"{c} ({what})" for c, what in sorted(KNOWN_CODES.items()))
        raise ValueError(f"{code!r} is not a pollutant code plantwatch knows: {known}")
    return code


# A map field's own HJ 212 pollutant code (`hj212: a34013`), instead of its role's.
Hj212Code = Annotated[str, AfterValidator(_known_code)]


class DataSelection(Strict):
    """Which data a platform gets: real-time every N seconds, minute data every 1/5/10/15 minutes,
    hour and day data (null or false: none)."""

    realtime: Duration | None = 30.0
    minute: Duration | None = 600.0
    hour: bool = True
    day: bool = True

    @field_validator("minute")
    @classmethod
    def _check_minute(cls, seconds: float | None) -> float | None:
        if seconds is not None and seconds not in MINUTE_PERIODS:
            raise ValueError("minute data go every 1m, 5m, 10m or 15m")
        return seconds


class PlatformConfig(Strict):
    """One platform: where it listens, the station code it assigned, and what it gets."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")  # in logs, health and the record store
    host: str
    port: int = Field(ge=1, le=65535)
    mn: str  # the station (MN) code the platform assigned: 24 characters
    pw_env: str  # the environment variable holding the access password (PW)
    st: str = Field(default="31", pattern=r"^\d{2}$")  # system code; 31: air pollution source
    timeout: Duration = 10.0  # waiting for the platform's answer (CN 9014) to a data packet
    retries: int = Field(default=3, ge=0, le=10)  # sends of a packet before the link is reset
    answer: bool = True  # ask for an answer to data packets (Flag A); without, sent is delivered
    reconnect: Duration = 60.0  # the longest wait between connection attempts (from 1 s, doubling)
    devices: list[str] = Field(min_length=1)  # the stack this MN identifies (one)
    data: DataSelection = Field(default_factory=DataSelection)

    @field_validator("devices")
    @classmethod
    def _one_stack(cls, devices: list[str]) -> list[str]:
        if len(devices) > 1:
            raise ValueError(
                "one MN identifies one monitoring point: give each stack its own entry "
                "(the same host and port, its own mn and name)"
            )
        return devices

    @field_validator("mn", mode="before")
    @classmethod
    def _mn_as_written(cls, mn: object) -> object:
        if isinstance(mn, int | float) and not isinstance(mn, bool):
            raise ValueError(
                f"write the MN in quotes: YAML read it as the number {mn} (leading zeros and all)"
            )
        return mn

    @field_validator("mn")
    @classmethod
    def _check_mn(cls, mn: str) -> str:
        if not MN_PATTERN.match(mn):
            raise ValueError(f"an HJ 212-2017 station code (MN) is 24 hex digits: {mn!r}")
        return mn


class Hj212Config(Strict):
    """The uplink: its platforms and its record store."""

    platforms: list[PlatformConfig] = Field(min_length=1)  # one entry per platform and stack (MN)
    store: str = "plantwatch-hj212.sqlite"  # minute, hour and day records and each platform's cursor
    keep: Duration = 32 * 86400.0  # records kept this long, for resends and history requests
    lateness: Duration = 120.0  # a silent stack's open minute closes this long after it ends

    @field_validator("platforms")
    @classmethod
    def _unique_names(cls, platforms: list[PlatformConfig]) -> list[PlatformConfig]:
        names = [p.name for p in platforms]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"platform names must differ (each keeps its own cursor): {', '.join(twice)}")
        return platforms
