"""IdleTimer: re-arming for a younger wait, and no timer left once closed.

Written against the survivors of tools/mutation.sh for connectrpc._aio.deadline.
"""

from __future__ import annotations

import asyncio

import pytest

from connectrpc._aio.deadline import IdleTimer


class _IdleError(Exception):
    pass


async def test_a_rearmed_timer_still_fails_the_later_wait() -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        timer = IdleTimer(0.05, _IdleError)
        await timer.wait(asyncio.sleep(0.03))
        start = loop.time()
        # The timer fires during this wait before it is due, re-arms, then fails it.
        with pytest.raises(_IdleError):
            await timer.wait(asyncio.sleep(1))
        assert loop.time() - start < 0.5
        timer.close()
    finally:
        loop.set_exception_handler(None)
    assert errors == []


async def test_close_between_waits_drops_the_timer() -> None:
    timer = IdleTimer(10, _IdleError)
    await timer.wait(asyncio.sleep(0))
    assert timer._handle is not None
    timer.close()
    assert timer._handle is None


async def test_close_during_a_wait_drops_the_timer_when_it_ends() -> None:
    timer = IdleTimer(10, _IdleError)

    async def close_soon() -> None:
        await asyncio.sleep(0.005)
        timer.close()

    closer = asyncio.create_task(close_soon())
    assert await timer.wait(asyncio.sleep(0.03, "done")) == "done"
    await closer
    assert timer._handle is None
