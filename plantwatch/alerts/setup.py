"""The alert service as a plant's config describes it: its state store and its notifiers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from plantwatch.alerts.notifiers import Notifier
from plantwatch.alerts.notifiers.email import EmailNotifier
from plantwatch.alerts.notifiers.grafana import GrafanaNotifier
from plantwatch.alerts.service import AlertService
from plantwatch.alerts.state import StateStore
from plantwatch.config.plant import Plant


def notifiers_for(plant: Plant, store: StateStore) -> list[Notifier]:
    """Email always (without SMTP, mail waits in the outbox); Grafana when configured."""
    config = plant.config.alerts
    base = plant.path.parent if plant.path else Path.cwd()
    notifiers: list[Notifier] = [
        EmailNotifier(
            config.smtp,
            config.recipients,
            base / config.outbox,
            store=store,
            plant=plant.config.plant.id,
            plant_names={lang: plant.config.plant.name_in(lang) for lang in ("zh", "en")},
            sectors={d.id: getattr(plant.maps.get(d.id), "sector", None) for d in plant.config.devices},
            timezone=config.timezone,
            dashboard_url=config.dashboard_url,
            base_dir=base,
        )
    ]
    if config.grafana is not None:
        notifiers.append(GrafanaNotifier(config.grafana, store, plant.config.plant.id))
    return notifiers


def build_alert_service(
    plant: Plant,
    *,
    write_lines: Callable[[list[str]], object] | None = None,
    clock: Callable[[], int] = time.time_ns,
    silences: Path | None = None,  # another state file whose silences apply (an alert worker's)
) -> AlertService:
    """An AlertService with the plant's state file (`alerts.state`) and notifiers."""
    base = plant.path.parent if plant.path else Path.cwd()
    store = StateStore(base / plant.config.alerts.state, silences=silences)
    return AlertService(
        plant, store=store, notifiers=notifiers_for(plant, store), write_lines=write_lines, clock=clock
    )
