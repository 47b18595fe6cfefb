"""`plantwatch collect` and `plantwatch run`: the collector into InfluxDB through the durable buffer;
`run` adds the alert service in the same process, fed by every commit."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections import Counter
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plantwatch.app.exit_codes import EXIT_INVALID, EXIT_OK
from plantwatch.app.lifecycle import influx_output, service_runtime, stop_on_signals
from plantwatch.collector.errors import CollectorError
from plantwatch.collector.service import CollectorService
from plantwatch.config.plant import InfluxConfig, Plant, load_plant_config
from plantwatch.config.problems import ConfigError, Problem
from plantwatch.config.secrets import SecretError
from plantwatch.core.tasks import supervised
from plantwatch.infra.errors import InfraError

if TYPE_CHECKING:
    from plantwatch.alerts.service import AlertService

log = logging.getLogger(__name__)

View = Callable[["AlertService | None", asyncio.Event], Coroutine[Any, Any, None]]


async def collect(
    plant: Plant,
    influx: InfluxConfig | None,
    *,
    health_interval: float = 10.0,
    with_alerts: bool = False,
    stop: asyncio.Event | None = None,
    view: View | None = None,
) -> int:
    """Run until SIGINT/SIGTERM (or `stop`); return the number of lines left in the buffer.

    `with_alerts` (`plantwatch run`) adds the alert service, fed in-process by every commit.
    Without `influx` (`plantwatch demo`), lines wait in the buffer for a later `collect`.
    `view`, when given, runs beside the service until it stops (the demo's live view).
    """
    alerts: AlertService | None = None
    restarts: Counter[str] = Counter()  # crashed tasks, restarted: in the health report
    with stop_on_signals(stop or asyncio.Event()) as stop, service_runtime():
        async with influx_output(plant, influx, plant.config.buffer.path, restarts=restarts) as output:
            log.info(
                "collect: %d device(s) -> %s, buffer %s (%d line(s) waiting)",
                len(plant.config.devices),
                output.target,
                output.buffer.path,
                output.buffer.depth,
            )
            closing: list[Callable[[], None]] = []
            if with_alerts:
                from plantwatch.alerts.setup import build_alert_service  # `collect` never loads it

                alerts = build_alert_service(plant, write_lines=output.buffer.append)
            try:
                service = CollectorService(
                    plant,
                    output.buffer,
                    wakeup=output.wakeup,
                    forwarder_stats=output.stats,
                    batch_size=influx.batch_size if influx else 5000,
                    health_interval=health_interval,
                    restarts=restarts,
                )
                tasks: list[asyncio.Task[None]] = []

                def keep(name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
                    tasks.append(asyncio.create_task(supervised(name, run, stop, restarts)))

                if alerts is not None:
                    from plantwatch.alerts.health import AlertsHealth  # `collect` never loads it

                    alerts_health = AlertsHealth(alerts, health_interval, restarts=restarts)
                    service.listen(alerts)
                    keep("alerts", partial(alerts.run, stop))
                    keep("alerts health", partial(alerts_health.run, stop))
                    from plantwatch.app.reports import send_documents  # `collect` never loads it

                    keep("documents", partial(send_documents, plant, alerts, stop))
                if plant.config.hj212 is not None:
                    from plantwatch.hj212.service import Hj212Uplink  # only plants that report over HJ 212

                    uplink = Hj212Uplink(plant, write_lines=output.buffer.append)
                    service.listen(uplink)
                    keep("hj212", partial(uplink.run, stop))
                    closing.append(uplink.close)
                if view is not None:
                    keep("view", partial(view, alerts, stop))
                async with service:
                    await stop.wait()
                for task in tasks:
                    await task
            finally:
                if alerts is not None:
                    alerts.close()
                for close in closing:
                    close()
    log.info("collect: stopped; %d line(s) left in the buffer for the next start", output.left)
    return output.left


def command(args: argparse.Namespace) -> int:
    """Poll devices into the durable buffer and forward it to InfluxDB until SIGINT/SIGTERM;
    `run` adds the alert service in the same process."""
    path = Path(args.config)
    plant = load_plant_config(path)
    if plant.config.influx is None:
        raise ConfigError(
            [Problem(str(path), "influx", f"required by `plantwatch {args.command}`: where readings go")]
        )
    try:
        asyncio.run(
            collect(
                plant,
                plant.config.influx,
                health_interval=args.health_interval,
                with_alerts=args.command == "run",
            )
        )
    except (CollectorError, InfraError, SecretError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK
