"""The root of plantwatch's exception tree; each package derives its own base from it."""

from __future__ import annotations


class PlantwatchError(Exception):
    """Base class of every error plantwatch raises on purpose."""


class DecodeError(PlantwatchError):
    """Registers or a payload value could not be turned into a value (bad string bytes, NaN where
    forbidden...)."""
