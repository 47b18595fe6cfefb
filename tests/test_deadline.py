"""Deadline: asyncio.timeout's behaviour, except that an answer already in hand is not thrown away."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

import pytest

from plantwatch.core.deadline import Deadline


def test_a_deadline_that_passes_raises_timeout_error() -> None:
    async def run() -> None:
        async with Deadline(0.05):
            await asyncio.Event().wait()  # never set

    with pytest.raises(TimeoutError):
        asyncio.run(run())


def test_a_result_ready_when_the_held_up_loop_comes_back_is_taken() -> None:
    async def run() -> str:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[str] = loop.create_future()
        loop.call_later(0.05, answer.set_result, "in time")  # due long before the deadline
        async with Deadline(0.1):
            time.sleep(0.3)  # the loop is held up past both; the deadline comes due with the answer
            return await answer

    assert asyncio.run(run()) == "in time"


def test_a_block_done_in_time_is_never_cancelled_later_and_a_cancel_from_outside_stays_one() -> None:
    errors: list[dict[str, object]] = []

    async def run() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
        async with Deadline(0.05):
            await asyncio.sleep(0)
        await asyncio.sleep(0.2)  # past the deadline: nothing fires at this task, nothing fails
        blocked = asyncio.create_task(asyncio.Event().wait())

        async def inside() -> None:
            async with Deadline(10):
                await blocked

        task = asyncio.create_task(inside())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task  # a CancelledError, not a TimeoutError: the deadline did not expire

    asyncio.run(run())
    assert errors == []  # a timer left behind would have failed in a callback


def test_many_deadlines_share_one_timer_and_none_expires_early() -> None:
    """200 reads in flight with deadlines from 110 down to 20 ms (each later one due earlier: the
    one timer moves forward): the loop holds one timer for all of them, not one each; the half
    that overrun time out, never before their deadline and not long after, and the half that
    finish in time do not."""

    async def one(seconds: float, answer: asyncio.Event) -> tuple[str, float, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with Deadline(seconds):
                await answer.wait()
            return "done", seconds, loop.time() - started
        except TimeoutError:
            return "timeout", seconds, loop.time() - started

    async def run() -> tuple[int, list[tuple[str, float, float]]]:
        answered, silent = asyncio.Event(), asyncio.Event()  # the second is never set
        reads = [
            asyncio.create_task(one(0.11 - (n % 10) * 0.01, silent if n % 2 else answered))
            for n in range(200)
        ]
        await asyncio.sleep(0)  # every read has entered its deadline
        scheduled = asyncio.get_running_loop()._scheduled  # type: ignore[attr-defined]
        timers = sum(not handle.cancelled() for handle in scheduled)
        answered.set()  # the even ones answer in time
        return timers, await asyncio.gather(*reads)

    timers, results = asyncio.run(run())
    assert timers == 1  # the deadlines' one, not 200
    overran = [(n, r) for n, r in enumerate(results) if n % 2]
    assert all(
        outcome == "timeout" and seconds <= took < seconds + 1 for _, (outcome, seconds, took) in overran
    )
    assert all(outcome == "done" for n, (outcome, _, _) in enumerate(results) if n % 2 == 0)


def test_a_loop_that_ran_deadlines_is_freed() -> None:
    """The deadlines' shared state is held by the loop's own timer, not the other way round: a
    loop that ran a deadline is freed once closed (tests and benchmarks run many loops)."""

    async def run() -> weakref.ref[asyncio.AbstractEventLoop]:
        async with Deadline(10):  # left early: its bucket, and the timer for it, outlive the block
            await asyncio.sleep(0)
        return weakref.ref(asyncio.get_running_loop())

    loop = asyncio.run(run())
    gc.collect()
    assert loop() is None


def test_a_deadline_is_entered_once() -> None:
    async def run() -> None:
        deadline = Deadline(1)
        async with deadline:
            pass
        async with deadline:
            pass

    with pytest.raises(RuntimeError, match="entered once"):
        asyncio.run(run())
