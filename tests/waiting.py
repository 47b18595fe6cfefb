"""Waiting for events, not for time: the one `wait_until` every test uses (and its async twin)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

POLL_INTERVAL = 0.05


def wait_until(condition: Callable[[], T], timeout: float, what: str = "") -> T:
    """Call `condition` until it returns something truthy and return that; after `timeout`
    seconds fail the test, saying what was awaited and what the condition last returned."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g} s: {what or _name(condition)} (last: {result!r})")
        time.sleep(POLL_INTERVAL)


async def wait_until_async(condition: Callable[[], T | Awaitable[T]], timeout: float, what: str = "") -> T:
    """`wait_until` inside an event loop: the loop keeps running while the test waits."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g} s: {what or _name(condition)} (last: {result!r})")
        await asyncio.sleep(POLL_INTERVAL)


def _name(condition: Callable[..., object]) -> str:
    return getattr(condition, "__qualname__", repr(condition))
