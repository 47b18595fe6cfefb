"""The collector as one service: Modbus polls and MQTT messages into the durable buffer through the
sink, the readings bus, and the health report."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from types import TracebackType

from plantwatch.collector.health import HealthReporter
from plantwatch.collector.mqtt.subscriber import MqttSubscriber
from plantwatch.collector.readings_bus import ReadingsBus
from plantwatch.collector.scheduler import Collector
from plantwatch.collector.sink import BufferSink, Listener
from plantwatch.config.plant import MqttConfig, Plant
from plantwatch.core.tasks import supervised
from plantwatch.infra.influx.buffer import DurableBuffer
from plantwatch.infra.influx.forwarder import ForwarderStats
from plantwatch.infra.mqtt import MqttConnection


@asynccontextmanager
async def mqtt_input(
    plant: Plant, config: MqttConfig, sink: BufferSink, base: Path, health: HealthReporter
) -> AsyncIterator[None]:
    """Subscribe to the plant's MQTT devices and, if configured, publish the readings bus."""
    subscriber = MqttSubscriber(
        plant, sink, max_payload=config.max_payload, samples_file=base / "plantwatch-mqtt-rejects.jsonl"
    )
    health.mqtt_rejects = subscriber.rejects.counts
    connection = MqttConnection(
        config,
        client_id=config.client_id or f"plantwatch-{plant.config.plant.id}",
        base_dir=base,
        subscriptions=subscriber.subscriptions,
        on_message=subscriber.handle,
    )
    subscriber.connection = connection
    if config.publish_readings:
        sink.listeners.append(ReadingsBus(connection, plant.config.plant.id))
    async with connection:
        yield
        sink.flush()  # acknowledge what was received before disconnecting


class CollectorService:
    """`async with`: polling, MQTT and health run inside; on exit, polls in flight are drained, the
    sink is flushed and the health task stops. Listeners (the alert service in `plantwatch run`)
    get every committed result."""

    def __init__(
        self,
        plant: Plant,
        buffer: DurableBuffer,
        *,
        wakeup: asyncio.Event,
        forwarder_stats: ForwarderStats,
        batch_size: int,
        health_interval: float = 10.0,
        restarts: Counter[str] | None = None,
    ) -> None:
        self.plant = plant
        self.sink = BufferSink(plant, buffer, wakeup, batch_size)
        self.restarts = restarts if restarts is not None else Counter()  # crashed tasks, for health
        self.health = HealthReporter(
            plant.config.plant.id,
            [d.id for d in plant.config.devices],
            buffer,
            self.sink.stats,
            forwarder_stats,
            interval=health_interval,
            restarts=self.restarts,
        )
        self._stack = AsyncExitStack()
        self._health_stop = asyncio.Event()
        self._health_task: asyncio.Task[None] | None = None

    def listen(self, listener: Listener) -> None:
        """Give `listener` every committed result from now on."""
        self.sink.listeners.append(listener)

    async def __aenter__(self) -> CollectorService:
        self._health_task = asyncio.create_task(
            supervised("health", lambda: self.health.run(self._health_stop), self._health_stop, self.restarts)
        )
        base = self.plant.path.parent if self.plant.path else Path.cwd()
        try:
            if self.plant.config.mqtt is not None:
                await self._stack.enter_async_context(
                    mqtt_input(self.plant, self.plant.config.mqtt, self.sink, base, self.health)
                )
            collector = await self._stack.enter_async_context(Collector(self.plant, self.sink))
            self.health.skipped = collector.skipped
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        await self._stack.aclose()
        self.sink.flush()
        self._health_stop.set()
        if self._health_task is not None:
            await self._health_task
