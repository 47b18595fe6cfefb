"""InfluxDB writers behind one interface: `writer.send(writer.encode(lines))`, raising a classified
WriteError.

- `api: v2` posts to /api/v2/write with influxdb-client (InfluxDB 1.8+, 2.x, 3).
- `api: v1` posts to /write with urllib3 (InfluxDB 1.x before 1.8, such as Debian's package).

Both gzip the body and send nanosecond timestamps. Neither retries: the forwarder decides. A write
is two blocking steps, `encode` and `send`, which the forwarder runs on worker threads: it encodes
the next batch while one is being sent, and queues its send behind it.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import urlencode

import urllib3

from plantwatch.config.plant import InfluxConfig
from plantwatch.config.secrets import secret
from plantwatch.core.redact import redact_url, scrub
from plantwatch.infra.errors import InfraError

ErrorKind = Literal["retry", "reject", "config"]
# 400 bad line, 422 unprocessable (e.g. outside retention), 413 batch too large: split the batch.
REJECT_STATUSES = frozenset({400, 413, 422})
# Credentials or target wrong: no line is to blame; keep everything buffered and keep trying.
CONFIG_STATUSES = frozenset({401, 403, 404, 405})


class WriteError(InfraError):
    """A batch was not written. `kind` says what helps: retry later, split the batch, fix config."""

    def __init__(
        self, message: str, *, kind: ErrorKind, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after


def classify(status: int, body: str, headers: dict[str, str]) -> WriteError:
    """Turn an HTTP error answer into a WriteError with the server's own reason."""
    reason = _server_reason(body) or f"HTTP {status}"
    if status in REJECT_STATUSES:
        return WriteError(f"InfluxDB rejected the batch ({status}): {reason}", kind="reject", status=status)
    if status in CONFIG_STATUSES:
        return WriteError(f"InfluxDB refused the write ({status}): {reason}", kind="config", status=status)
    return WriteError(
        f"InfluxDB is unavailable ({status}): {reason}",
        kind="retry",
        status=status,
        retry_after=_retry_after(headers.get("Retry-After") or headers.get("retry-after")),
    )


def _server_reason(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:500]
    if isinstance(data, dict):
        return str(data.get("error") or data.get("message") or data)[:500]
    return str(data)[:500]


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


Encoded = bytes | list[str]  # a batch ready to post: a gzip body (v1), or the lines (v2 encodes itself)


class Writer(Protocol):
    """Writes a batch of line-protocol lines or raises WriteError; both steps block, so callers
    run them on worker threads."""

    target: str

    def encode(self, lines: list[str]) -> Encoded:
        """The batch as posted."""

    def send(self, encoded: Encoded) -> None:
        """Post one encoded batch; raise WriteError when it was not written."""

    def close(self) -> None:
        """Release connections."""


@dataclass
class V1Writer:
    """POST /write?db=...&rp=...&precision=ns, gzip, Basic auth from the environment."""

    config: InfluxConfig

    def __post_init__(self) -> None:
        cfg = self.config
        self.target = f"{redact_url(cfg.url)} database {cfg.database}" + (
            f" rp {cfg.retention_policy}" if cfg.retention_policy else ""
        )
        self._url = cfg.url.rstrip("/") + "/write"
        self._fields = {"db": cfg.database or "", "precision": "ns"}
        if cfg.retention_policy:
            self._fields["rp"] = cfg.retention_policy
        self._headers = {"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"}
        self._headers.update(credentials(cfg))
        self._pool = urllib3.PoolManager(
            cert_reqs="CERT_REQUIRED" if cfg.verify_tls else "CERT_NONE",
            timeout=urllib3.Timeout(total=cfg.timeout),
            retries=False,
        )

    def encode(self, lines: list[str]) -> Encoded:
        """The gzip body. On a worker thread zlib releases the GIL, so compression overlaps polling.
        Level 1: line protocol still shrinks several-fold, at a fraction of level 6's CPU."""
        return gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), compresslevel=1)

    def send(self, encoded: Encoded) -> None:
        """Post one encoded batch; raise WriteError when it was not written."""
        url = f"{self._url}?{urlencode(self._fields)}"
        try:
            response = self._pool.request("POST", url, body=encoded, headers=self._headers)
        except urllib3.exceptions.HTTPError as exc:
            raise WriteError(
                f"cannot reach InfluxDB at {self.target}: {scrub(exc, self.config.url)}", kind="retry"
            ) from exc
        if response.status >= 300:
            raise classify(response.status, response.data.decode("utf-8", "replace"), dict(response.headers))

    def close(self) -> None:
        """Release connections."""
        self._pool.clear()


@dataclass
class V2Writer:
    """influxdb-client's synchronous write API on a worker thread; gzip on, its own retries off."""

    config: InfluxConfig

    def __post_init__(self) -> None:
        cfg = self.config
        # influxdb-client takes a quarter of a second to import: only v2 outputs pay for it
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        assert cfg.bucket is not None  # InfluxConfig requires it for api v2
        self._bucket = cfg.bucket
        self.target = f"{redact_url(cfg.url)} bucket {cfg.bucket}"
        token = secret(cfg.token_env)
        user, password = secret(cfg.username_env), secret(cfg.password_env)
        if token is None and user is not None:
            token = f"{user}:{password or ''}"  # InfluxDB 1.8's v2 API takes user:password as token
        self._client = InfluxDBClient(
            url=cfg.url,
            token=token or "",
            org=cfg.org or "-",
            timeout=int(cfg.timeout * 1000),
            enable_gzip=True,
            verify_ssl=cfg.verify_tls,
            retries=False,
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    def encode(self, lines: list[str]) -> Encoded:
        """The lines themselves: influxdb-client gzips them as it posts."""
        return lines

    def send(self, encoded: Encoded) -> None:
        """Post one encoded batch; raise WriteError when it was not written."""
        from influxdb_client.rest import ApiException

        try:
            # write_precision defaults to nanoseconds, the precision of every line plantwatch makes
            self._api.write(bucket=self._bucket, org=self.config.org or "-", record=encoded)
        except ApiException as exc:
            body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body or "")
            raise classify(exc.status or 0, body, dict(exc.headers or {})) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise WriteError(
                f"cannot reach InfluxDB at {self.target}: {scrub(exc, self.config.url)}", kind="retry"
            ) from exc

    def close(self) -> None:
        """Release connections."""
        self._api.close()
        self._client.close()


def make_writer(config: InfluxConfig) -> Writer:
    """The writer for the config's `api`."""
    return V2Writer(config) if config.api == "v2" else V1Writer(config)


def credentials(cfg: InfluxConfig) -> dict[str, str]:
    """The Authorization header of the secrets the config names: a user's basic auth (1.x) or a
    token (2.x, 3); none when it names neither."""
    headers: dict[str, str] = {}
    user, password = secret(cfg.username_env), secret(cfg.password_env)
    if user is not None:
        headers.update(urllib3.make_headers(basic_auth=f"{user}:{password or ''}"))
    token = secret(cfg.token_env)
    if token is not None:
        headers["Authorization"] = f"Token {token}"
    return headers
