"""The alert service's exception base; a delivery failure says whether a retry can help."""

from __future__ import annotations

from plantwatch.core.errors import PlantwatchError


class AlertsError(PlantwatchError):
    """Base class of every error raised by the alert service."""


class DeliveryError(AlertsError):
    """A notification was not delivered. `retryable`: the network, a server or a credential may
    come back (retried with backoff); otherwise this notification can never be delivered (a
    refused recipient, a request the server rejects) and goes to the dead letters."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
