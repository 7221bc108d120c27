"""Deadlines: expiry becomes deadline_exceeded, other cancellations pass through untouched.

Written to kill the mutants tools/mutation.sh found surviving in connectrpc._aio.deadline.
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from connectrpc._aio.deadline import Deadline, IdleTimer, deadline_exceeded
from connectrpc.errors import Code, ConnectError


def test_deadline_exceeded_error() -> None:
    err = deadline_exceeded()
    assert (err.code, err.message, err.wire) == (
        Code.DEADLINE_EXCEEDED,
        "the RPC deadline was exceeded",
        False,
    )


@pytest.mark.parametrize("timeout", [0.01, 0.0, -5.0])
async def test_expiry_cancels_and_raises_deadline_exceeded(timeout: float) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = Deadline(timeout)
    with pytest.raises(ConnectError) as info, deadline:
        await asyncio.sleep(5)
    assert loop.time() - start < 0.5
    assert info.value.code is Code.DEADLINE_EXCEEDED
    assert isinstance(info.value.__cause__, asyncio.CancelledError)
    assert deadline.expired is True
    task = asyncio.current_task()
    assert task is not None
    if sys.version_info >= (3, 11):
        # The cancellation was the deadline's own: the task is not left "cancelling".
        assert task.cancelling() == 0


async def test_no_expiry_before_the_deadline_and_none_after_exit() -> None:
    deadline = Deadline(0.05)
    with deadline:
        await asyncio.sleep(0)
    assert deadline.expired is False
    await asyncio.sleep(0.1)  # the timer was cancelled on exit: nothing cancels us now
    assert deadline.expired is False


async def test_no_timeout_never_expires() -> None:
    deadline = Deadline(None)
    with deadline:
        await asyncio.sleep(0.01)
    assert deadline.expired is False


async def test_outside_cancellation_is_not_a_deadline() -> None:
    entered = asyncio.Event()

    async def work() -> None:
        with Deadline(10):
            entered.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(work())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- IdleTimer: one bound per wait ------------------------------------------------------


class _IdleError(Exception):
    pass


async def test_idle_timer_fails_a_long_wait() -> None:
    timer = IdleTimer(0.02, _IdleError)
    assert timer.timeout == 0.02
    assert await timer.wait(asyncio.sleep(0, "fast")) == "fast"
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(_IdleError) as info:
        await timer.wait(asyncio.sleep(5))
    assert loop.time() - start < 0.5
    assert isinstance(info.value.__cause__, asyncio.CancelledError)
    task = asyncio.current_task()
    assert task is not None
    if sys.version_info >= (3, 11):
        assert task.cancelling() == 0
    timer.close()


async def test_idle_timer_bounds_each_wait_not_their_sum() -> None:
    timer = IdleTimer(0.05, _IdleError)
    for _ in range(6):  # 6 x 0.02 s: longer than the timeout in total, never in one wait
        await timer.wait(asyncio.sleep(0.02))
        await asyncio.sleep(0.005)  # time between waits does not count either
    timer.close()


async def test_idle_timer_after_expiry_passes_outside_cancellation_through() -> None:
    timer = IdleTimer(0.05, _IdleError)
    with pytest.raises(_IdleError):
        await timer.wait(asyncio.sleep(5))
    started = asyncio.Event()

    async def waiter() -> None:
        started.set()
        await timer.wait(asyncio.sleep(5))

    task = asyncio.create_task(waiter())
    await started.wait()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    timer.close()


async def test_idle_timer_expired_then_reused() -> None:
    timer = IdleTimer(0.02, _IdleError)
    with pytest.raises(_IdleError):
        await timer.wait(asyncio.sleep(5))
    # The same timer bounds the next wait again, and a fast wait is not failed.
    assert await timer.wait(asyncio.sleep(0.001, 1)) == 1
    with pytest.raises(_IdleError):
        await timer.wait(asyncio.sleep(5))
    timer.close()


async def test_idle_timer_close_during_a_wait_keeps_it_bounded() -> None:
    timer = IdleTimer(0.02, _IdleError)

    async def close_soon() -> None:
        await asyncio.sleep(0.005)
        timer.close()

    closer = asyncio.create_task(close_soon())
    with pytest.raises(_IdleError):
        await timer.wait(asyncio.sleep(5))
    await closer


async def test_idle_timer_back_to_back_waits_longer_than_the_timeout_in_total() -> None:
    timer = IdleTimer(0.1, _IdleError)
    for _ in range(8):  # 8 x 0.02 s with no gap: the timer fires during a later, young wait
        await timer.wait(asyncio.sleep(0.02))
    timer.close()


async def test_fresh_idle_timer_passes_outside_cancellation_through() -> None:
    timer = IdleTimer(10, _IdleError)
    started = asyncio.Event()

    async def waiter() -> None:
        started.set()
        await timer.wait(asyncio.sleep(5))

    task = asyncio.create_task(waiter())
    await started.wait()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    timer.close()


async def test_idle_timer_firing_between_waits_is_harmless() -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        timer = IdleTimer(0.02, _IdleError)
        await timer.wait(asyncio.sleep(0))
        await asyncio.sleep(0.06)  # the timer fires while nothing waits
        assert await timer.wait(asyncio.sleep(0, 1)) == 1
        timer.close()
    finally:
        loop.set_exception_handler(None)
    assert errors == []
