"""Secrets (tokens, passwords) come from environment variables the config names, never from files."""

from __future__ import annotations

import os

from plantwatch.core.errors import PlantwatchError


class SecretError(PlantwatchError):
    """A secret the config asks for is not set; the message names the variable, never a value."""


def secret(env_name: str | None) -> str | None:
    """The value of the environment variable `env_name` (None when the config names none)."""
    if env_name is None:
        return None
    value = os.environ.get(env_name)
    if value is None:
        raise SecretError(f"environment variable {env_name} (named by the config) is not set")
    return value
