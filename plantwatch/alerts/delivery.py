"""Delivering the notification log: one queue per notifier and destination, oldest first.

A failure a retry can cure (the network, a server, a credential) holds back only its own queue
and waits: exponential backoff from 5 s to 5 min with ±20 % jitter, or the server's Retry-After
held within the same bounds. A failure no retry can cure (a refused recipient, a request Grafana
rejects) sends that message to the dead letters with the reason, logged once, and its queue goes
on. Nothing blocks what is behind it in other queues.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence

from plantwatch.alerts.errors import DeliveryError
from plantwatch.alerts.notifiers import Notification, Notifier
from plantwatch.alerts.state import StateStore
from plantwatch.core.failpoints import failpoint
from plantwatch.core.outage_log import OutageLog

log = logging.getLogger(__name__)

BACKOFF = (5.0, 300.0)  # seconds: first retry, longest wait
JITTER = 0.2


class Dispatcher:
    """Sends what the notification log holds, with retries and dead letters per queue."""

    def __init__(
        self,
        store: StateStore,
        notifiers: Sequence[Notifier],
        clock: Callable[[], int],
        *,
        backoff: tuple[float, float] = BACKOFF,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.notifiers = {n.name: n for n in notifiers}
        self.clock = clock
        self.backoff = backoff
        self.jitter = jitter
        self.outages = {name: OutageLog(log) for name in self.notifiers}

    def delay(self, attempts: int, retry_after: float | None) -> float:
        """Seconds before the next attempt: the server's wish or exponential, within bounds."""
        low, high = self.backoff
        if retry_after is not None:
            return min(high, max(low, retry_after))
        exponential = min(high, low * 2 ** min(attempts, 30))
        return exponential * (1 - JITTER + 2 * JITTER * self.jitter())

    async def deliver(self) -> bool:
        """Send every due notification; True when nothing is left pending."""
        blocked: set[tuple[str, str]] = set()  # queues whose head must wait for a retry
        for notification in self.store.due_notifications(self.clock()):
            queue = (notification.notifier, notification.destination)
            notifier = self.notifiers.get(notification.notifier)
            if queue in blocked or (notifier is not None and not notifier.can_send):
                continue
            if notifier is None:
                self._dead(notification, None, f"no {notification.notifier} notifier is configured")
                continue
            try:
                await notifier.send(notification)
            except DeliveryError as exc:
                if not exc.retryable:
                    self._dead(notification, notifier, str(exc))
                    continue
                blocked.add(queue)
                self._retry(notification, str(exc), exc.retry_after)
                continue
            except Exception as exc:  # a notifier's bug must not stop delivery: log it, retry later
                log.exception("%s: delivering notification %d failed", notifier.name, notification.id)
                blocked.add(queue)
                self._retry(notification, repr(exc), None)
                continue
            failpoint("notify.after_send")
            self.store.settle(notification.id, "sent")
            failpoint("notify.after_mark")
            settled = self.store.notification(notification.id)
            assert settled is not None
            notifier.settled(settled)
            self.outages[notifier.name].recovered("%s: delivering again", notifier.name)
        return self.store.next_attempt_ns() is None

    def _retry(self, notification: Notification, error: str, retry_after: float | None) -> None:
        wait = self.delay(notification.attempts, retry_after)
        self.store.retry_later(notification.id, self.clock() + int(wait * 1e9), error)
        self.outages.setdefault(notification.notifier, OutageLog(log)).failure(
            "%s to %s: %s; retrying in %.0f s (held messages wait, other queues go on)",
            notification.notifier,
            notification.destination,
            error,
            wait,
        )

    def _dead(self, notification: Notification, notifier: Notifier | None, reason: str) -> None:
        self.store.settle(notification.id, "dead", reason)
        log.error(
            "%s to %s (%s %s %s) can never be delivered, kept as a dead letter: %s",
            notification.notifier,
            notification.destination,
            notification.device,
            notification.rule,
            notification.event,
            reason,
        )
        settled = self.store.notification(notification.id)
        if notifier is not None and settled is not None:
            notifier.settled(settled)
