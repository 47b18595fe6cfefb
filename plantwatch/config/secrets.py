"""Secrets (tokens, passwords) come from environment variables the config names, or from the files
those variables' `_FILE` twins name (Docker and Kubernetes secrets); never from config files, never
into logs."""

from __future__ import annotations

import os
from pathlib import Path

from plantwatch.core.errors import PlantwatchError


class SecretError(PlantwatchError):
    """A secret the config asks for is not set; the message names the variable, never a value."""


def secret(env_name: str | None) -> str | None:
    """The value of the environment variable `env_name`, else the content of the file named by
    `<env_name>_FILE` (without its final newline); None when the config names no variable."""
    if env_name is None:
        return None
    value = os.environ.get(env_name)
    if value is not None:
        return value
    file = os.environ.get(f"{env_name}_FILE")
    if file is None:
        raise SecretError(f"environment variable {env_name} (named by the config) is not set")
    try:
        return Path(file).read_text(encoding="utf-8").rstrip("\n")
    except OSError as exc:
        raise SecretError(f"{env_name}_FILE names {file}, which cannot be read: {exc.strerror}") from exc
