"""Shared schema pieces for config files: durations, sizes, and the strict pydantic base."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict

from plantwatch.core.durations import parse_duration, parse_size

Duration = Annotated[float, BeforeValidator(parse_duration)]
# An InfluxDB measurement name a map may choose: no space, comma, newline or control character.
MEASUREMENT_PATTERN = r"^[A-Za-z0-9_.-]+$"
Size = Annotated[int, BeforeValidator(parse_size)]


class Strict(BaseModel):
    """A config section: unknown keys are errors (a typo never silently does nothing), values frozen,
    and no number is infinite or NaN (YAML's `.inf` and `.nan`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)
