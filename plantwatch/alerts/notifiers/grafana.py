"""Grafana region annotations: opened when an alert fires, closed (timeEnd) when it resolves."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

from plantwatch.alerts.errors import DeliveryError
from plantwatch.alerts.lifecycle import Transition
from plantwatch.alerts.notifiers import Message, Notification
from plantwatch.alerts.notifiers.message import subject
from plantwatch.alerts.state import StateStore
from plantwatch.config.alerts import GrafanaConfig
from plantwatch.config.secrets import secret
from plantwatch.contract.grafana import annotation_tags
from plantwatch.core.redact import redact_url, scrub

log = logging.getLogger(__name__)

# 400 a request Grafana will never take, 404 an annotation that is gone, 422 unprocessable;
# anything else (401/403 a credential to fix, 429, 5xx, the network) may succeed later.
PERMANENT_STATUSES = frozenset({400, 404, 422})


def seconds(header: str | None) -> float | None:
    """A Retry-After header's delay in seconds, when it gives a finite number."""
    try:
        value = float(header)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # absent, or an HTTP date: the dispatcher's own backoff
        return None
    return value if math.isfinite(value) else None


class GrafanaNotifier:
    """One call per firing (open the region) and per resolution (close it); the id Grafana gives
    the region is kept with the alert, so the close finds it after a restart."""

    name = "grafana"
    silenceable = False  # a silenced breach is still a breach on the dashboard
    can_send = True

    def __init__(self, config: GrafanaConfig, store: StateStore, plant: str) -> None:
        from grafana_client import GrafanaApi  # a fifth of a second to import: only when configured

        self.config, self.store, self.plant = config, store, plant
        credential: str | tuple[str, str] | None
        if config.username_env:
            credential = (secret(config.username_env) or "", secret(config.password_env) or "")
        else:
            credential = secret(config.token_env)
        self.api = GrafanaApi.from_url(config.url, credential=credential, timeout=config.timeout)
        # grafana-client keeps an error's body, not its headers: the last answer's Retry-After
        self._retry_after: str | None = None
        self.api.client.s.hooks["response"].append(self._remember_retry_after)

    def _remember_retry_after(self, response: Any, **_: Any) -> Any:
        self._retry_after = response.headers.get("Retry-After")
        return response

    def render(self, transition: Transition) -> list[Message]:
        """The call a transition needs (reminders need none)."""
        alert, rule = transition.alert, transition.rule
        if transition.event == "firing":
            target = rule.target
            body: dict[str, Any] = {
                "time": alert.window_start_ns // 10**6,
                "text": subject(transition, self.plant, "en"),
                "tags": annotation_tags(
                    self.plant, alert.device, rule.id, alert.severity, target.sector if target else None
                ),
            }
            if self.config.dashboard_uid:
                body["dashboardUID"] = self.config.dashboard_uid
            call = {"call": "open", "body": body}
        elif transition.event == "resolved":
            call = {"call": "close", "body": {"timeEnd": alert.window_end_ns // 10**6}}
        else:
            return []
        return [Message(redact_url(self.config.url), json.dumps(call, ensure_ascii=False).encode())]

    async def send(self, notification: Notification) -> None:
        """Make the call (HTTP in a worker thread; the state store stays on the event loop)."""
        from grafana_client.client import GrafanaException

        call = json.loads(notification.payload)
        alert = self.store.alerts.get((notification.device, notification.rule))
        annotation = alert.annotation_id if alert else None
        try:
            self._retry_after = None
            made = await asyncio.to_thread(self._call, call, annotation, notification)
        except GrafanaException as exc:
            status, url = getattr(exc, "status_code", None), self.config.url
            raise DeliveryError(
                f"Grafana {redact_url(url)}: {status or ''} {scrub(exc, url)}".strip(),
                retryable=status not in PERMANENT_STATUSES,
                retry_after=seconds(self._retry_after),  # held within the dispatcher's bounds
            ) from exc
        except (OSError, ValueError) as exc:
            url = self.config.url
            raise DeliveryError(f"Grafana {redact_url(url)}: {scrub(exc, url)}", retryable=True) from exc
        if made is not None:
            self.store.alerts.set_annotation(notification.device, notification.rule, made)

    def _call(self, call: dict[str, Any], annotation: int | None, notification: Notification) -> int | None:
        """One HTTP call (blocking); the id of a region it opened."""
        if call["call"] == "open":
            return int(self.api.client.POST("/annotations", json=call["body"])["id"])
        if annotation is None:
            log.warning("Grafana: no region to close for %s %s", notification.device, notification.rule)
        else:
            # PATCH with only timeEnd: grafana-client's partial_update_annotation sends
            # "tags": [] by default, which would wipe the region's tags.
            self.api.client.PATCH(f"/annotations/{annotation}", json=call["body"])
        return None

    def recorded(self, notification: Notification) -> None:
        """Nothing to show: the log holds the call."""

    def settled(self, notification: Notification) -> None:
        """Nothing to move."""
