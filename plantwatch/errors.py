"""The root of plantwatch's exception tree; each package derives its own base from it."""

from __future__ import annotations


class PlantwatchError(Exception):
    """Base class of every error plantwatch raises on purpose."""
