"""Notifiers: the channels an alert transition is told through (email, Grafana annotations), each
behind the one `Notifier` interface; a new channel is one more class that implements it.

A notifier never keeps what it owes: `render` turns a transition into messages without any I/O,
and the alert service writes them into the notification log (the state store) in the same
transaction as the alert's new state. The dispatcher then `send`s each logged notification,
retrying what can be retried and dead-lettering what never can be (docs/alerts.md#notifications).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from plantwatch.alerts.lifecycle import Transition
from plantwatch.alerts.notification import Message, Notification
from plantwatch.core.document import Document

__all__ = ["DocumentNotifier", "Message", "Notification", "Notifier"]


class Notifier(Protocol):
    """One channel."""

    name: str  # "email", "grafana": in the log, in logs and in health
    silenceable: bool  # whether a silence mutes it (email does; annotations record every episode)

    @property
    def can_send(self) -> bool:
        """False: messages wait in the log (email without an SMTP server)."""
        ...

    def render(self, transition: Transition) -> list[Message]:
        """The messages `transition` owes this channel; no I/O (it runs inside the transaction)."""
        ...

    async def send(self, notification: Notification) -> None:
        """Deliver one logged message; raise DeliveryError saying whether a retry can help."""
        ...

    def recorded(self, notification: Notification) -> None:
        """The message is in the log (committed): e.g. show it in the outbox folder."""
        ...

    def settled(self, notification: Notification) -> None:
        """The message was delivered or dead-lettered (`notification.state`)."""
        ...


@runtime_checkable
class DocumentNotifier(Protocol):
    """A channel that also carries documents (the digest, the monthly report): email."""

    name: str

    def render_document(self, document: Document) -> list[Message]:
        """One message per recipient the document is for; no I/O."""
        ...
