"""MQTT device map schema: a topic template, a payload format, and the fields picked from payloads."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from plantwatch.config.hj212 import Hj212Code
from plantwatch.config.roles import Role, Sector
from plantwatch.config.units import MEASUREMENT_PATTERN, Duration, Strict
from plantwatch.core.event_time import Marks

PayloadFormat = Literal["json", "value", "sparkplug_b"]
FieldType = Literal["float", "int", "bool", "string"]
PLACEHOLDER = re.compile(r"^\{([a-z][a-z0-9_]*)\}$")


class MqttField(Strict):
    """One value picked from a payload.

    `path` says where: for `json`, a key or dotted path (`data.dust`, `values.0`); for `value`,
    the `{field}` level of the topic; for `sparkplug_b`, the metric name. Default: `name`.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    path: str | None = None
    type: FieldType = "float"
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    role: Role | None = None
    description: str | None = None
    hj212: Hj212Code | None = None  # the pollutant code reported over HJ 212 (default: by role)

    @property
    def source(self) -> str:
        """Where the value is found in the payload."""
        return self.path or self.name

    @model_validator(mode="after")
    def _check(self) -> MqttField:
        if self.type in ("bool", "string") and (self.scale != 1 or self.offset != 0):
            raise ValueError(f"{self.name!r}: `scale`/`offset` are illegal with type {self.type}")
        return self


class MqttTimestamp(Strict):
    """Where a JSON payload carries its timestamp, in which form, and which moment of the
    value's period it names (HJ 212 minute and hour data: the start)."""

    path: str
    format: Literal["epoch_s", "epoch_ms", "epoch_ns", "iso8601"]
    marks: Marks = "instant"


class MqttDeviceMap(Strict):
    """A model of MQTT-publishing device (CEMS analyser, meter, edge gateway)."""

    model: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str
    sector: Sector
    product: str | None = None
    protocol: Literal["mqtt"]
    source: str | None = None
    measurement: str | None = Field(default=None, pattern=MEASUREMENT_PATTERN)  # InfluxDB measurement
    format: PayloadFormat
    topic: str | None = None
    timestamp: MqttTimestamp | None = None
    interval: Duration | None = None  # how often the device publishes (staleness); default 1m
    fields: list[MqttField] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> MqttDeviceMap:
        if self.format == "sparkplug_b":
            if self.topic is not None:
                raise ValueError(
                    "sparkplug_b maps take no `topic`: it is spBv1.0/{group}/<type>/{edge_node}/{device}"
                )
            if self.timestamp is not None:
                raise ValueError("sparkplug_b metrics carry their own timestamps: remove `timestamp`")
            return self
        if not self.topic:
            raise ValueError(
                f"format {self.format} needs a `topic`, like plants/{{plant}}/cems/{{device}}/data"
            )
        levels = self.topic.split("/")
        if any(c in level for level in levels for c in "#+"):
            raise ValueError("`topic` uses named levels like {device}, not the wildcards + and #")
        has_field = "{field}" in levels
        if self.format == "value" and not has_field:
            raise ValueError("format value needs a {field} level in `topic`: one value per topic")
        if self.format == "json" and has_field:
            raise ValueError("{field} is only for format value; format json picks fields by `path`")
        if self.timestamp is not None and self.format != "json":
            raise ValueError("`timestamp` is only read from json payloads")
        clashing = sorted(set(self.placeholders()) & {"sector", "model", "product"})
        if clashing:
            raise ValueError(
                f"topic level(s) {', '.join(clashing)} would overwrite tags plantwatch sets; rename them"
            )
        names = [f.name for f in self.fields]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate field name(s): {', '.join(duplicates)}")
        return self

    def placeholders(self) -> list[str]:
        """Named levels of the topic, in order."""
        return [m.group(1) for level in (self.topic or "").split("/") if (m := PLACEHOLDER.match(level))]
