"""Reading InfluxDB back with InfluxQL over `/query` (InfluxDB 1.x; 1.8+, 2.x with a DBRP mapping;
3): what reports and digests are computed from. Credentials as the writers take them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import urllib3

from plantwatch.config.plant import InfluxConfig
from plantwatch.core.redact import redact_url, scrub
from plantwatch.infra.errors import InfraError
from plantwatch.infra.influx.writers import credentials

_OBJECT = re.compile(r"<[^<>]* object at 0x[0-9a-f]+>: ")


class QueryError(InfraError):
    """InfluxDB did not answer the query, or answered with an error (the message says which)."""


@dataclass(frozen=True)
class Series:
    """One series of a result: its tags and rows (each row a dict of column -> value; `time` in ns)."""

    name: str
    tags: dict[str, str] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)


class InfluxReader:
    """`query(q)` -> the series of one InfluxQL statement, for the database the plant writes to."""

    def __init__(self, config: InfluxConfig) -> None:
        self.config = config
        if config.api == "v1":
            self.database, self.retention_policy = config.database or "", config.retention_policy
        else:  # a v2 bucket: `database/retention_policy` on 1.8, a DBRP-mapped name on 2.x
            database, _, policy = (config.bucket or "").partition("/")
            self.database, self.retention_policy = database, policy or None
        self._headers = credentials(config)
        self._pool = urllib3.PoolManager(
            cert_reqs="CERT_REQUIRED" if config.verify_tls else "CERT_NONE",
            timeout=urllib3.Timeout(total=config.timeout * 3),
            retries=False,
        )
        self.target = f"{redact_url(config.url)} database {self.database}"

    def query(self, statement: str) -> list[Series]:
        """Run one statement; raise QueryError naming the server and its reason."""
        fields = {"q": statement, "db": self.database, "epoch": "ns"}
        if self.retention_policy:
            fields["rp"] = self.retention_policy
        url = self.config.url.rstrip("/") + "/query"
        try:
            response = self._pool.request_encode_body(
                "POST", url, fields=fields, headers=self._headers, encode_multipart=False
            )
        except urllib3.exceptions.HTTPError as exc:
            reason = _OBJECT.sub("", str(getattr(exc, "reason", None) or exc))  # no "<... at 0x7f...>: "
            raise QueryError(
                f"cannot reach InfluxDB at {self.target}: {scrub(reason, self.config.url)}"
            ) from exc
        try:
            body: dict[str, Any] = json.loads(response.data or b"{}")
        except ValueError:
            body = {}
        if response.status >= 300 or "error" in body:
            reason = body.get("error") or response.data.decode("utf-8", "replace")[:300]
            raise QueryError(f"InfluxDB at {self.target} refused the query ({response.status}): {reason}")
        result = (body.get("results") or [{}])[0]
        if "error" in result:
            raise QueryError(f"InfluxDB at {self.target}: {result['error']} (query: {statement})")
        return [
            Series(
                s.get("name", ""),
                dict(s.get("tags") or {}),
                [dict(zip(s["columns"], row, strict=False)) for row in s.get("values", [])],
            )
            for s in result.get("series", [])
        ]

    def close(self) -> None:
        """Release connections."""
        self._pool.clear()


def quoted(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def identifier(name: str) -> str:
    """An InfluxQL identifier (measurement, tag or field name)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
