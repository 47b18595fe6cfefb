"""Crash points for the fault tests: with `PLANTWATCH_FAILPOINT=<name>` in its environment the
process kills itself (SIGKILL, as a power cut or the OOM killer would) when it reaches the point
of that name. Unset, a point costs one comparison."""

from __future__ import annotations

import os
import signal

_ARMED = os.environ.get("PLANTWATCH_FAILPOINT")


def failpoint(name: str) -> None:
    """Die here if the fault test armed this point."""
    if name == _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
