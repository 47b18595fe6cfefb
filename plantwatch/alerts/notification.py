"""What the notification log holds: a message owed to one destination, and its delivery so far."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """What a transition owes one destination of a notifier (a mail to one recipient, one call
    to Grafana), ready to send as it is."""

    destination: str
    payload: bytes


@dataclass(frozen=True)
class Notification:
    """A message in the notification log, with its delivery so far."""

    id: int
    notifier: str
    destination: str
    device: str
    rule: str
    event: str
    payload: bytes
    created_ns: int
    state: str  # "pending", "sent" or "dead"
    attempts: int
    error: str | None
