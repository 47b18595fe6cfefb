"""An InfluxQL query target for grafana-foundation-sdk panels (the SDK ships no InfluxDB builder)."""

from __future__ import annotations

from typing import Any, Literal

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants

DATASOURCE_UID = "plantwatch-influxdb"  # the provisioned datasource (provisioning/datasources/)
DATASOURCE = {"type": "influxdb", "uid": DATASOURCE_UID}

Format = Literal["time_series", "table"]


class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL query as Grafana's InfluxDB datasource stores it."""

    def __init__(self, ref_id: str, query: str, result_format: Format, alias: str | None) -> None:
        self.ref_id, self.query, self.result_format, self.alias = ref_id, query, result_format, alias

    def to_json(self) -> dict[str, Any]:
        """The target object of a panel's `targets`."""
        out: dict[str, Any] = {
            "refId": self.ref_id,
            "datasource": DATASOURCE,
            "rawQuery": True,
            "query": self.query,
            "resultFormat": self.result_format,
        }
        if self.alias:
            out["alias"] = self.alias
        return out


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    """`InfluxQL("SELECT ...", ref_id="A")`: a panel target running raw InfluxQL."""

    def __init__(
        self,
        query: str,
        *,
        ref_id: str = "A",
        result_format: Format = "time_series",
        alias: str | None = None,
    ) -> None:
        self._query = InfluxQLQuery(ref_id, " ".join(query.split()), result_format, alias)

    def build(self) -> InfluxQLQuery:
        """The query object."""
        return self._query
