"""Grafana region annotations: opened when an alert fires, closed (timeEnd) when it resolves."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from plantwatch.alerts.lifecycle import Transition
from plantwatch.alerts.notifiers.message import subject
from plantwatch.alerts.state import GrafanaCall, StateStore
from plantwatch.config.alerts import GrafanaConfig
from plantwatch.config.secrets import secret
from plantwatch.contract.grafana import annotation_tags
from plantwatch.core.outage_log import OutageLog

log = logging.getLogger(__name__)


class GrafanaNotifier:
    """Region annotations for breaches: opened when an alert fires, closed when it resolves. Calls
    wait in the state store until Grafana took them; the annotation id is kept with the alert."""

    name = "grafana"
    silenceable = False  # a silenced breach is still a breach on the dashboard

    def __init__(self, config: GrafanaConfig, store: StateStore, plant: str) -> None:
        from grafana_client import GrafanaApi  # a fifth of a second to import: only when configured

        self.config, self.store, self.plant = config, store, plant
        credential: str | tuple[str, str] | None
        if config.username_env:
            credential = (secret(config.username_env) or "", secret(config.password_env) or "")
        else:
            credential = secret(config.token_env)
        self.api = GrafanaApi.from_url(config.url, credential=credential, timeout=config.timeout)
        self.outage = OutageLog(log)

    def enqueue(self, transition: Transition) -> None:
        """Queue the call a transition needs (reminders need none)."""
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
            self.store.queue_grafana(alert.device, rule.id, "open", body)
        elif transition.event == "resolved":
            self.store.queue_grafana(
                alert.device, rule.id, "close", {"timeEnd": alert.window_end_ns // 10**6}
            )

    async def deliver(self) -> bool:
        """Make the queued calls in order; stop at the first failure. True when none is left.

        The state store is read and written here, on the event loop (its connection belongs to
        that thread); only the HTTP calls run in a worker thread.
        """
        from grafana_client.client import GrafanaException

        for call in self.store.grafana_calls():
            alert = self.store.alerts.get((call.device, call.rule))
            annotation = alert.annotation_id if alert else None
            try:
                made = await asyncio.to_thread(self._send, call, annotation)
            except (GrafanaException, OSError, ValueError) as exc:
                self.outage.failure(
                    "Grafana %s: %s (%s call kept for a retry)", self.config.url, exc, call.call
                )
                return False
            if made is not None:
                self.store.alerts.set_annotation(call.device, call.rule, made)
            self.store.done_grafana(call.id)
            self.outage.recovered("Grafana %s reachable again", self.config.url)
        return True

    def _send(self, call: GrafanaCall, annotation: int | None) -> int | None:
        """One HTTP call (blocking); the id of an annotation it opened."""
        if call.call == "open":
            return int(self.api.client.POST("/annotations", json=call.body)["id"])
        if annotation is None:
            log.warning("Grafana: no annotation to close for %s %s", call.device, call.rule)
        else:
            # PATCH with only timeEnd: grafana-client's partial_update_annotation sends
            # "tags": [] by default, which would wipe the annotation's tags.
            self.api.client.PATCH(f"/annotations/{annotation}", json=call.body)
        return None
