"""Notifiers: the channels an alert transition is told through (email, Grafana annotations), each
behind the one `Notifier` interface; a new channel is one more class that implements it."""

from __future__ import annotations

from typing import Protocol

from plantwatch.alerts.lifecycle import Transition


class Notifier(Protocol):
    """One channel. `enqueue` records what a transition owes, durably, without network I/O;
    `deliver` sends what is queued (retried on the next call when it fails)."""

    name: str  # "email", "grafana": in logs
    silenceable: bool  # whether a silence mutes it (email does; annotations record every episode)

    def enqueue(self, transition: Transition) -> None:
        """Queue what `transition` owes this channel."""
        ...

    async def deliver(self) -> bool:
        """Send what is queued, oldest first; True when nothing is left waiting for a retry."""
        ...
