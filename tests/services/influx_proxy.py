"""A test-only HTTP proxy in front of InfluxDB 1.x.

It maps `/api/v2/write?bucket=db/rp` to `/write?db=db&rp=rp` exactly as InfluxDB 1.8 does
(token `user:password` becomes u/p), passes `/write` through, records every request, and can
answer the next N requests with an injected status (e.g. 429 with Retry-After).
"""

from __future__ import annotations

import gzip
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class InfluxProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.requests: list[tuple[str, list[str]]] = []  # (path, lines)
        self.inject: list[tuple[int, dict[str, str], str]] = []  # (status, headers, body)
        self.delay = 0.0  # seconds added to every request (a slow server)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                text = gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
                parts = urllib.parse.urlsplit(self.path)
                proxy.requests.append((parts.path, text.decode().splitlines()))
                time.sleep(proxy.delay)
                if proxy.inject:
                    status, headers, reply = proxy.inject.pop(0)
                    self._reply(status, headers, reply.encode())
                    return
                query = dict(urllib.parse.parse_qsl(parts.query))
                if parts.path == "/api/v2/write":
                    db, _, rp = query.get("bucket", "").partition("/")
                    query = {"db": db, "precision": query.get("precision", "ns")} | ({"rp": rp} if rp else {})
                    token = self.headers.get("Authorization", "").removeprefix("Token ")
                    if ":" in token:
                        query["u"], query["p"] = token.split(":", 1)
                elif parts.path != "/write":
                    self._reply(404, {}, b'{"error":"not found"}')
                    return
                req = urllib.request.Request(
                    f"{proxy.upstream}/write?{urllib.parse.urlencode(query)}", data=text, method="POST"
                )
                try:
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        self._reply(resp.status, {}, resp.read())
                except urllib.error.HTTPError as exc:
                    self._reply(exc.code, dict(exc.headers), exc.read())
                except OSError:
                    self._reply(503, {}, b'{"error":"upstream down"}')

            def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in (
                        "content-length",
                        "connection",
                        "transfer-encoding",
                        "date",
                        "server",
                    ):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> InfluxProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
