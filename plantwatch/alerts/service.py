"""The alert service: readings in, KPIs and alert transitions out to InfluxDB and the notifiers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from plantwatch.alerts.delivery import Dispatcher
from plantwatch.alerts.history import KpiHistory
from plantwatch.alerts.kpi.engine import KpiEngine
from plantwatch.alerts.kpi.projection import projection_rule
from plantwatch.alerts.kpi.value import KpiValue
from plantwatch.alerts.lifecycle import (
    PLANT,
    REGULATOR,
    STALE,
    Alert,
    Rule,
    Transition,
    evaluate,
    evaluate_stale,
)
from plantwatch.alerts.notifiers import DocumentNotifier, Message, Notifier
from plantwatch.alerts.state import StateStore
from plantwatch.config.plant import Plant
from plantwatch.config.targets import Target, resolve_targets
from plantwatch.contract.influx import ALERT_MEASUREMENT, KPI_MEASUREMENT, fields_line
from plantwatch.core.document import Document
from plantwatch.core.failpoints import failpoint
from plantwatch.core.reading import PollResult

log = logging.getLogger(__name__)

KPI_POINT_INTERVAL_NS = 10 * 10**9  # rolling, live and to-date values: at most one point per 10 s
TICK = 1.0  # seconds between stale checks and delivery attempts
CHECKPOINT_NS = 10 * 10**9  # open KPI windows saved at least this often (and at every stop)
ACK_BATCH = 10  # bus messages handled before a checkpoint acknowledges them (else within 1 s)
LATE_NOTICE_NS = 60 * 10**9  # judged this long after its window plus lateness: a late value
UNRENDERED = "(not rendered)"  # the destination of a message its notifier could not render


def build_rules(plant: Plant, engine: KpiEngine, targets: list[Target]) -> dict[tuple[str, str], Rule]:
    """(device, rule id) -> rule, for every computed KPI, its early warning, and staleness.

    Who is told (docs/alerts.md#routing): regulators get the breaches the plans judge (dust hourly
    averages, critical targets such as elimination lines, per-tonne values over the calendar window
    a target is judged over); plant staff get every rule.
    """
    alerts = plant.config.alerts
    by_id = {t.id: t for t in targets}
    rules: dict[tuple[str, str], Rule] = {}
    for device, calculators in engine.calculators.items():
        for calculator in calculators:
            target = by_id[calculator.target.id]
            assert target.value is not None
            for_s = alerts.for_ if target.for_ is None else target.for_
            repeat_s = target.repeat or alerts.repeat
            for_ns, repeat_ns = int(for_s * 1e9), int(repeat_s * 1e9)
            owner = getattr(calculator, "device", device)  # a group target's values are the group's
            # the per-tonne value over its judged window, or a group's over its calendar month
            judged = calculator.rule != target.id or (
                owner != device and target.kpi in ("per_tonne", "share") and target.window == "month"
            )
            regulator = judged or target.kpi == "dust_hourly" or target.severity == "critical"
            rules[(owner, calculator.rule)] = Rule(
                calculator.rule,
                target,
                target.value,
                target.severity,
                0 if judged else for_ns,
                repeat_ns,
                alerts.clear_margin,
                REGULATOR if regulator else PLANT,
            )
            if calculator.projects:  # the month-end projection, for plant staff
                projection = projection_rule(calculator.rule)
                rules[(owner, projection)] = Rule(
                    projection, target, target.value, "warning", for_ns, repeat_ns, alerts.clear_margin, PLANT
                )
            if target.early_warning is not None:
                early = f"{target.id}:early"
                limit = target.value * target.early_warning
                rules[(owner, early)] = Rule(
                    early, target, limit, "warning", for_ns, repeat_ns, alerts.clear_margin, PLANT
                )
    for total in engine.totals.totals.values():  # plant totals: for plant staff, beside the devices'
        target = by_id[total.target.id]
        assert target.value is not None
        repeat_ns = int((target.repeat or alerts.repeat) * 1e9)
        rules[(total.device, total.rule)] = Rule(
            total.rule, target, target.value, target.severity, 0, repeat_ns, alerts.clear_margin, PLANT
        )
    for device_config in plant.config.devices:
        rules[(device_config.id, STALE)] = Rule(
            STALE, None, None, "warning", 0, int(alerts.repeat * 1e9), 0.0, PLANT
        )
    return rules


class AlertService:
    """Feed it committed results (it is a sink listener); `run()` does stale checks and delivery.

    It keeps alert state in `store` and tells every transition to `notifiers`
    (`alerts.setup.build_alert_service` builds both from the plant's config).
    """

    def __init__(
        self,
        plant: Plant,
        *,
        store: StateStore,
        notifiers: Sequence[Notifier],
        write_lines: Callable[[list[str]], object] | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.plant = plant
        config = plant.config.alerts
        self.plant_id = plant.config.plant.id
        self.targets = resolve_targets(config, str(plant.path))
        self.engine = KpiEngine(plant, self.targets)
        self.rules = build_rules(plant, self.engine, self.targets)
        self.store = store
        self.alerts = store.alerts
        self.history = KpiHistory(store)
        self.notifiers = list(notifiers)
        self.dispatcher = Dispatcher(store, self.notifiers, clock)
        self.write_lines = write_lines
        self.clock = clock
        started = clock()
        # Liveness, in wall time: when each device last sent a good value a KPI reads, and how
        # many good results in a row since (a stale alert resolves after STALE_CLEAR of them).
        saved = store.last_good()
        self.last_good = {d.id: saved.get(d.id, started) for d in plant.config.devices}
        self._liveness_unsaved = set(self.last_good)  # saved by the next checkpoint (all, the first)
        self.good_streak = dict.fromkeys(self.last_good, 0)
        self.stale_ns = {
            d.id: int(plant.expected_interval(d.id) * config.stale_after * 1e9) for d in plant.config.devices
        }
        self.lateness_ns = {d.id: int(plant.lateness(d.id) * 1e9) for d in plant.config.devices}
        for total in self.engine.totals.totals.values():  # a total waits for its slowest device
            self.lateness_ns[total.device] = max(self.lateness_ns[m] for m in total.members)
        for group_id, group in plant.config.groups.items():  # and a group for its slowest member
            self.lateness_ns[group_id] = max(self.lateness_ns[m] for m in group.devices)
        slowest = max(self.lateness_ns.values(), default=0)
        for owner, _ in self.rules:  # other values over several devices (capacity): the slowest
            self.lateness_ns.setdefault(owner, slowest)
        self.engine.restore(store.kpi_windows(), started)  # windows continue across a restart
        self._checkpointed = started
        self._acks: list[Callable[[], object]] = []  # bus messages handled since the checkpoint
        self.transitions: list[Transition] = []  # this run's, oldest first (for health and tests)
        self.silenced = 0
        self.unknown_devices: set[str] = set()
        self._last_point: dict[tuple[str, str, str], int] = {}
        self.latest: dict[tuple[str, str], KpiValue] = {}  # (device, rule) -> newest KPI value
        self._wake = asyncio.Event()

    def __call__(self, results: list[PollResult]) -> None:
        """Sink listener: the results the collector just committed."""
        for result in results:
            self.handle(result)

    def handle(self, result: PollResult, ack: Callable[[], object] | None = None) -> None:
        """One result: liveness, KPIs in event time, rule evaluation, transitions. `ack` (the
        readings bus) runs once the KPI windows this result moved are saved; it is queued before
        anything else, so it runs with the next checkpoint even when handling the result fails."""
        if ack is not None:
            self._acks.append(ack)
        device = result.device
        if device not in self.last_good:  # e.g. on the bus from a device this config lacks
            if device not in self.unknown_devices:
                log.warning(
                    "alerts: readings of %s, which is not a device of this plant, are ignored", device
                )
            self.unknown_devices.add(device)
            return
        now = self.clock()
        lines: list[str] = []
        if self._live(result):
            self.last_good[device] = now
            self._liveness_unsaved.add(device)
            self.good_streak[device] += 1
            if self.alerts.get((device, STALE), Alert(device, STALE)).state == "firing":
                lines += self._stale_check(device, now)  # good data again: it may resolve
        else:
            self.good_streak[device] = 0
        lines += self._evaluate(self.engine.update(result, now), now)
        if lines and self.write_lines is not None:
            self.write_lines(lines)
        if len(self._acks) >= ACK_BATCH:  # the broker holds back more once ~20 are unacknowledged
            self.checkpoint()

    def _live(self, result: PollResult) -> bool:
        """Whether the result has a good value of a field a KPI of the device reads (of any
        field, for a device no KPI watches)."""
        fields = self.engine.fields(result.device)
        return any(r.good and (fields is None or r.field in fields) for r in result.readings)

    def _evaluate(self, kpis: list[KpiValue], now: int) -> list[str]:
        lines: list[str] = []
        for kpi in kpis:
            self.latest[(kpi.device, kpi.rule)] = kpi
            self.history.record(kpi)
            lines += self._kpi_lines(kpi)
            rule = self.rules.get((kpi.device, kpi.rule))
            if rule is not None:
                alert = self.alerts.get((kpi.device, kpi.rule), Alert(kpi.device, kpi.rule))
                lines += self._apply(*evaluate(alert, rule, kpi), now)
        return lines

    def _stale_check(self, device: str, now: int) -> list[str]:
        key = (device, STALE)
        alert = self.alerts.get(key, Alert(device, STALE))
        moved = evaluate_stale(
            alert,
            self.rules[key],
            self.last_good[device],
            now,
            self.stale_ns[device],
            self.good_streak[device],
        )
        if moved[1] is not None and moved[1].event == "firing":
            self.good_streak[device] = 0
        return self._apply(*moved, now)

    def _apply(self, alert: Alert, transition: Transition | None, now: int) -> list[str]:
        """The alert's new state and the notifications it owes, in one transaction: a crash at
        any point loses neither, and a restart never announces a transition twice."""
        if transition is None:
            self.alerts.put(alert)
            return []
        # A value judged long after its window ended came from late data (a backlog, a backfill):
        # the mail says so, with both times.
        late = transition.kpi is not None and (
            now - transition.kpi.ts_ns > self.lateness_ns[alert.device] + LATE_NOTICE_NS
        )
        history = self.history.points(alert.device, alert.rule)
        transition = replace(transition, detected_ns=now, late=late, history=history)
        self.transitions.append(transition)
        log.warning(
            "alert %s: %s %s value %s limit %s",
            transition.event,
            alert.device,
            alert.rule,
            alert.value,
            alert.limit,
        )
        silenced = any(
            s.matches(self.plant_id, alert.device, alert.rule, now) for s in self.store.silences(now)
        )
        if silenced:
            self.silenced += 1
        logged = []
        with self.store.transaction():
            self.alerts.put(alert)
            for notifier in self.notifiers:
                if silenced and notifier.silenceable:
                    continue
                messages, error = self._render(notifier, transition)
                for message in messages:
                    notification_id = self.store.log_notification(notifier.name, message, transition, now)
                    if error is not None:
                        self.store.settle(notification_id, "dead", error)
                    logged.append((notifier, notification_id))
            failpoint("notify.before_commit")
        failpoint("notify.after_commit")
        for notifier, notification_id in logged:
            notification = self.store.notification(notification_id)
            assert notification is not None
            if notification.state == "pending":
                notifier.recorded(notification)
            else:
                notifier.settled(notification)
        self._wake.set()
        ts = transition.kpi.ts_ns if transition.kpi else now
        tags = {
            "plant": self.plant_id,
            "device": alert.device,
            "rule": alert.rule,
            "severity": alert.severity,
        }
        fields: list[tuple[str, object]] = [
            ("event", transition.event),
            ("firing", 1 if alert.state == "firing" else 0),
            ("silenced", silenced),
        ]
        fields += [
            (k, float(v)) for k, v in (("value", alert.value), ("limit", alert.limit)) if v is not None
        ]
        return [fields_line(ALERT_MEASUREMENT, tags, fields, ts)]

    def publish(self, document: Document, *, again: bool = False) -> int:
        """Log `document`'s mails for the recipients that have not had it yet (every recipient
        when `again`), in one transaction; they are delivered like any notification. How many."""
        now = self.clock()
        logged = []
        with self.store.transaction():
            for notifier in self.notifiers:
                if not isinstance(notifier, DocumentNotifier):
                    continue
                had = set() if again else self.store.destinations(notifier.name, document.key)
                for message in notifier.render_document(document):
                    if message.destination not in had:
                        notification_id = self.store.log_message(
                            notifier.name,
                            message.destination,
                            self.plant_id,
                            document.key,
                            document.kind,
                            message.payload,
                            now,
                        )
                        logged.append((notifier, notification_id))
        for notifier, notification_id in logged:
            notification = self.store.notification(notification_id)
            assert notification is not None
            notifier.recorded(notification)
        self._wake.set()
        return len(logged)

    def published(self, key: str) -> bool:
        """Whether a document (`<kind>:<period>`) is in the notification log for anyone."""
        return any(
            self.store.destinations(n.name, key) for n in self.notifiers if isinstance(n, DocumentNotifier)
        )

    def _render(self, notifier: Notifier, transition: Transition) -> tuple[list[Message], str | None]:
        """What `transition` owes `notifier`. A notifier that cannot render it (a bug) costs only
        its own message: logged as a dead letter with the error, and the state still moves on."""
        try:
            return notifier.render(transition), None
        except Exception as exc:
            log.exception("%s: cannot render %s %s %s", notifier.name, *transition_key(transition))
            error = f"not rendered: {type(exc).__name__}: {exc}"
            return [Message(UNRENDERED, error.encode())], error

    def _kpi_lines(self, kpi: KpiValue) -> list[str]:
        key = (kpi.device, kpi.rule, kpi.kind)
        if kpi.kind in ("rolling", "live", "to-date", "projection"):
            # at most one point per series every 10 s; a value for the same time as the last point
            # is written again, replacing it (a plant total updated by its second furnace)
            last = self._last_point.get(key)
            if last is not None and kpi.ts_ns != last and kpi.ts_ns - last < KPI_POINT_INTERVAL_NS:
                return []
            self._last_point[key] = kpi.ts_ns
        tags = {"plant": self.plant_id, "device": kpi.device, "target": kpi.rule, "kind": kpi.kind}
        rule = self.rules.get((kpi.device, kpi.rule))
        fields: list[tuple[str, object]] = [("valid", kpi.value is not None), ("window_start", kpi.start_ns)]
        extra = (("value", kpi.value), ("numerator", kpi.numerator), ("denominator", kpi.denominator))
        fields += [(k, float(v)) for k, v in extra if v is not None]
        if rule is not None and rule.limit is not None:
            fields.append(("limit", float(rule.limit)))
        return [fields_line(KPI_MEASUREMENT, tags, fields, kpi.ts_ns)]

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: every second (or at once after a transition) stale checks, silent
        devices' windows, and the due notifications delivered."""
        while not stop.is_set():
            self._wake.clear()  # before delivering: a transition during delivery wakes the next turn
            self.tick()
            await self.deliver()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK)
        await self.deliver()  # one last attempt; the rest waits for the next start

    def tick(self) -> None:
        """Once a second: stale checks, windows of silent devices closed, a periodic checkpoint."""
        failpoint("alerts.tick")
        now = self.clock()
        lines = self._evaluate(self.engine.tick(now), now)
        for device in self.last_good:
            lines += self._stale_check(device, now)
        if lines and self.write_lines is not None:
            self.write_lines(lines)
        if self._acks or now - self._checkpointed >= CHECKPOINT_NS:
            self.checkpoint()

    def checkpoint(self) -> None:
        """Save the open KPI windows and liveness that changed, so a restart continues them;
        then acknowledge the bus messages they include."""
        liveness = {device: self.last_good[device] for device in self._liveness_unsaved}
        windows, closed = self.engine.changed_state(), self.history.unsaved()
        try:
            self.store.save_progress(windows, liveness, closed)
        except BaseException:  # not saved (disk full, locked): the next checkpoint tries it all again
            self.engine.unsaved(windows)
            self.history.put_back(closed)
            raise
        self._liveness_unsaved.clear()
        self._checkpointed = self.clock()
        acks, self._acks = self._acks, []
        for ack in acks:
            ack()

    async def deliver(self) -> bool:
        """Send the due notifications; False when something is left for a retry. SMTP and HTTP
        run in worker threads; the state store stays on the event loop's thread."""
        return await self.dispatcher.deliver()

    def close(self) -> None:
        """Checkpoint and close the state store."""
        self.checkpoint()
        self.store.close()


def transition_key(transition: Transition) -> tuple[str, str, str]:
    """(device, rule, event), for logs."""
    return transition.alert.device, transition.alert.rule, transition.event
