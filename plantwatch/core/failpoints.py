"""Fault points for the fault tests. `PLANTWATCH_FAILPOINT=<name>` in a process's environment makes
it kill itself (SIGKILL, as a power cut or the OOM killer would) when it reaches the point of that
name; `<name>:raise` makes the point raise FailpointError once instead (a bug in that code, which
the process must survive). Unset, a point costs one comparison."""

from __future__ import annotations

import os
import signal

_ARMED = os.environ.get("PLANTWATCH_FAILPOINT", "")
_NAME, _, _ACTION = _ARMED.partition(":")
_raised: set[str] = set()


class FailpointError(RuntimeError):
    """Raised by an armed `<name>:raise` point (once per process)."""


def failpoint(name: str) -> None:
    """Die here, or raise once, if the fault test armed this point."""
    if name != _NAME:
        return
    if _ACTION == "raise":
        if name not in _raised:
            _raised.add(name)
            raise FailpointError(f"failpoint {name}")
        return
    os.kill(os.getpid(), signal.SIGKILL)
