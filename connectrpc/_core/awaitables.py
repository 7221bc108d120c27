"""Awaitables run without an event loop, so sync code can share async-shaped logic.

The sync client drives the async client's call coroutine, and the WSGI app the ASGI app's
interceptor wrapper, by making sure nothing in them ever suspends: every awaited value is
already there (``Ready``), and ``run_now`` then finishes the coroutine in one step. A
coroutine that does suspend (an ``async def`` interceptor hook awaiting something) cannot be
finished without a loop: ``run_now`` closes it and raises ``TypeError``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator
from typing import Any, Generic, TypeVar

__all__ = ["Ready", "run_now"]

T = TypeVar("T")


class Ready(Generic[T]):
    """An awaitable of a value already there: awaiting it never suspends."""

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def __await__(self) -> Generator[Any, None, T]:
        return self._value
        yield  # unreachable: makes __await__ a generator, as the protocol requires


def run_now(awaitable: Awaitable[T], suspended: str) -> T:
    """``awaitable``'s result, computed in the calling thread; ``TypeError(suspended)`` if
    it would have to wait for something."""
    steps = awaitable.__await__()
    try:
        steps.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    steps.close()
    raise TypeError(suspended)
