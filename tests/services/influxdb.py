"""A real InfluxDB (Debian's `influxd`) for tests: own config, temp dirs, free ports, restartable."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.services.processes import free_port
from tests.waiting import wait_until


class InfluxDBServer:
    """`influxd` on loopback; `stop()`/`start()` keep data and ports, like a real restart."""

    def __init__(self, root: Path) -> None:
        self.binary = shutil.which("influxd")
        if self.binary is None:
            raise RuntimeError("influxd not found: apt-get install influxdb (.ci/run does)")
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        self.rpc_port = free_port()
        self.config = root / "influxdb.conf"
        self.config.write_text(
            f"""reporting-enabled = false
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{self.http_port}"
  log-enabled = false
[continuous_queries]
  enabled = false
""",
            encoding="utf-8",
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "influxd.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 30) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([self.binary, "-config", str(self.config)], stdout=log, stderr=log)  # type: ignore[list-item]
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"influxd exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as resp:
                    return resp.status == 204
            except OSError:
                return False

        wait_until(ready, timeout, f"influxd answering /ping on {self.http_port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def query(self, q: str, db: str | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL; return the series of the first result (empty list when none)."""
        params = {"q": q, "epoch": "ns"}
        if db:
            params["db"] = db
        data = urllib.parse.urlencode(params).encode()
        try:
            with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=30) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:  # InfluxQL errors come as 400 with a JSON body
            raise RuntimeError(f"{q}: {exc.code} {exc.read().decode(errors='replace')}") from exc
        result = body["results"][0]
        if "error" in result:
            raise RuntimeError(result["error"])
        return result.get("series", [])

    def create_database(self, db: str) -> None:
        self.query(f'CREATE DATABASE "{db}"')

    def write(self, lines: str, db: str) -> int:
        req = urllib.request.Request(
            f"{self.url}/write?db={db}&precision=ns", data=lines.encode(), method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code
