"""A local stand-in for Grafana's annotation and dashboard API that enforces what Grafana enforces.

From ../shared/grafana/API.md (Grafana's docs and pkg/api/annotations.go): a Bearer token or a
user's basic auth, else 401;
POST /api/annotations needs a non-empty `text`, integer millisecond `time`/`timeEnd`, string
`tags`; PATCH updates only what it is given (non-null `tags` replace all tags, empty `text`
is ignored, `time`/`timeEnd` ignored unless > 0), unknown id 404; GET filters by tags (AND).
POST /api/dashboards/db upserts by uid and answers 412 to a version conflict without
`overwrite`; GET /api/dashboards/uid/{uid} or 404.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class GrafanaApi:
    """`start()` on a free loopback port; `annotations` holds what Grafana would store."""

    def __init__(self, token: str, users: dict[str, str] | None = None) -> None:
        self.token = token
        self.users = users or {}  # basic auth, as Grafana accepts for its users
        self.annotations: dict[int, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}  # uid -> stored model
        self.dashboard_folders: dict[str, str] = {}
        self.requests: list[tuple[str, str, Any]] = []  # (method, path, body)
        self.down = False  # answer 503 to everything, as a Grafana restarting behind a proxy
        self.reject: list[int] = []  # statuses to answer the next annotation calls with, in order
        self.retry_after: str | None = None  # a Retry-After header on those answers
        self._next = 1
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any, retry_after: str | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"null")

            def _handle(self, method: str) -> None:
                path = urlsplit(self.path).path
                if api.down:
                    return self._reply(503, {"message": "Service Unavailable"})
                if path == "/api/health":
                    return self._reply(200, {"database": "ok", "version": "11.6.0"})
                if self.headers.get("Authorization") not in api.credentials():
                    return self._reply(401, {"message": "Unauthorized"})
                try:
                    body = self._body() if method in ("POST", "PATCH", "PUT") else None
                except ValueError:
                    return self._reply(400, {"message": "bad request data"})
                with api._lock:
                    api.requests.append((method, path, body))
                    if api.reject and path.startswith("/api/annotations"):
                        refused = {"message": "refused by the test"}
                        return self._reply(api.reject.pop(0), refused, api.retry_after)
                    status, reply = api.route(method, path, body, parse_qs(urlsplit(self.path).query))
                return self._reply(status, reply)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def credentials(self) -> set[str]:
        """Authorization headers Grafana would accept."""
        basic = {
            "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            for user, password in self.users.items()
        }
        return {f"Bearer {self.token}", *basic}

    @staticmethod
    def _valid_ms(value: Any) -> bool:
        return value is None or (isinstance(value, int) and not isinstance(value, bool))

    def _valid_times(self, body: Any) -> bool:
        return isinstance(body, dict) and all(self._valid_ms(body.get(k)) for k in ("time", "timeEnd"))

    def route(self, method: str, path: str, body: Any, query: dict[str, list[str]]) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "dashboards"]:
            return self._dashboards(method, parts[2:], body)
        if parts[:2] != ["api", "annotations"]:
            return 404, {"message": "Not found"}
        if method == "POST" and len(parts) == 2:
            if not isinstance(body, dict) or not all(
                self._valid_ms(body.get(k)) for k in ("time", "timeEnd")
            ):
                return 400, {"message": "bad request data"}
            tags = body.get("tags") or []
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                return 400, {"message": "bad request data"}
            if not isinstance(body.get("text"), str) or not body["text"]:
                return 400, {"message": "Failed to save annotation: text is required"}
            number, self._next = self._next, self._next + 1
            self.annotations[number] = {
                "id": number,
                "dashboardUID": body.get("dashboardUID") or "",
                "panelId": body.get("panelId") or 0,
                "time": body.get("time") or 0,
                "timeEnd": body.get("timeEnd") or body.get("time") or 0,
                "text": body["text"],
                "tags": tags,
            }
            return 200, {"message": "Annotation added", "id": number}
        if method == "GET" and len(parts) == 2:
            wanted = query.get("tags", [])
            found = [a for a in self.annotations.values() if all(t in a["tags"] for t in wanted)]
            return 200, found[: int(query.get("limit", ["100"])[0])]
        if len(parts) != 3 or not parts[2].isdigit():
            return 404, {"message": "Not found"}
        number = int(parts[2])
        if number not in self.annotations:
            return 404, {"message": "Annotation not found"}
        annotation = self.annotations[number]
        if method == "PATCH":
            if not isinstance(body, dict) or not all(
                self._valid_ms(body.get(k)) for k in ("time", "timeEnd")
            ):
                return 400, {"message": "bad request data"}
            if body.get("tags") is not None:
                annotation["tags"] = list(body["tags"])  # non-null tags replace all of them
            if body.get("text"):
                annotation["text"] = body["text"]
            for key in ("time", "timeEnd"):
                if (body.get(key) or 0) > 0:
                    annotation[key] = body[key]
            return 200, {"message": "Annotation patched"}
        if method == "DELETE":
            del self.annotations[number]
            return 200, {"message": "Annotation deleted"}
        return 405, {"message": "Method not allowed"}

    def _dashboards(self, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
        """POST /api/dashboards/db (upsert by uid; 412 on a version conflict without overwrite)
        and GET /api/dashboards/uid/{uid}."""
        if method == "POST" and parts == ["db"]:
            model = body.get("dashboard") if isinstance(body, dict) else None
            if not isinstance(model, dict) or not model.get("title"):
                return 400, {"message": "Dashboard title cannot be empty"}
            uid = model.get("uid") or f"generated-{len(self.dashboards) + 1}"
            current = self.dashboards.get(uid)
            if current and not body.get("overwrite") and model.get("version") != current["version"]:
                return 412, {"status": "version-mismatch", "message": "The dashboard has been changed"}
            version = current["version"] + 1 if current else 1
            self.dashboards[uid] = {**model, "uid": uid, "version": version, "id": len(self.dashboards) + 1}
            self.dashboard_folders[uid] = body.get("folderUid", "")
            return 200, {
                "id": self.dashboards[uid]["id"],
                "uid": uid,
                "url": f"/d/{uid}/{model['title'].lower().replace(' ', '-')}",
                "status": "success",
                "version": version,
            }
        if method == "GET" and len(parts) == 2 and parts[0] == "uid":
            if parts[1] not in self.dashboards:
                return 404, {"message": "Dashboard not found"}
            return 200, {"dashboard": self.dashboards[parts[1]], "meta": {"folderUid": ""}}
        return 404, {"message": "Not found"}
