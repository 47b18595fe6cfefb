"""`plantwatch dashboards push`: upload the committed dashboards to a Grafana that is not file-provisioned."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaException

from plantwatch.core.errors import PlantwatchError


class PushError(PlantwatchError):
    """Grafana refused a dashboard or could not be reached; the message names which and why."""


def push_dashboards(
    dashboards: dict[str, dict[str, Any]],
    url: str,
    token: str,
    *,
    folder_uid: str | None = None,
    timeout: float = 10.0,
    progress: Callable[[str], None] = lambda line: None,
) -> list[str]:
    """POST each dashboard to /api/dashboards/db (overwrite by uid); the URLs Grafana gives back."""
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    urls = []
    for number, (uid, model) in enumerate(dashboards.items(), 1):
        body: dict[str, Any] = {
            "dashboard": {k: v for k, v in model.items() if k != "id"},
            "overwrite": True,
            "message": "plantwatch dashboards push",
        }
        if folder_uid:
            body["folderUid"] = folder_uid
        try:
            reply = api.dashboard.update_dashboard(body)
        except GrafanaException as exc:
            raise PushError(f"{url}: dashboard {uid!r}: {exc.status_code} {exc.message}") from exc
        except OSError as exc:  # connection refused, DNS, TLS
            raise PushError(f"{url}: dashboard {uid!r}: {exc}") from exc
        urls.append(str(reply.get("url", "")))
        progress(f"[{number}/{len(dashboards)}] {uid}: version {reply.get('version')} {reply.get('url', '')}")
    return urls
