"""Cancel the current task when a deadline passes, and report it as ``deadline_exceeded``.

``asyncio.timeout`` does this from Python 3.11; this small equivalent also runs on 3.10 and
raises the RPC error directly, so handlers and clients see one error type. It costs one timer
handle, no extra task, so it is cheap enough to guard single awaits (idle timeouts). Nested
uses are independent: only the one that expired turns the cancellation into its error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

from connectrpc._core.error import deadline_exceeded

__all__ = ["Deadline", "IdleTimer", "deadline_exceeded"]


class Deadline:
    """``with Deadline(seconds):`` cancels the enclosed work after ``seconds`` (None: never).

    The cancellation surfaces as ``error()`` (by default ``deadline_exceeded``).
    """

    __slots__ = ("_error", "_expired", "_handle", "_task", "_timeout")

    def __init__(
        self,
        timeout: float | None,
        error: Callable[[], BaseException] = deadline_exceeded,
    ) -> None:
        self._timeout = timeout
        self._error = error
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None
        self._expired = False

    def __enter__(self) -> Deadline:
        if self._timeout is not None:
            self._task = asyncio.current_task()
            loop = asyncio.get_running_loop()
            self._handle = loop.call_later(max(self._timeout, 0.0), self._expire)
        return self

    def _expire(self) -> None:
        self._expired = True
        if self._task is not None:
            self._task.cancel()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self._expired and exc_type is asyncio.CancelledError:
            task = self._task
            if task is not None and hasattr(task, "uncancel"):
                task.uncancel()
            raise self._error() from exc

    @property
    def expired(self) -> bool:
        return self._expired


T = TypeVar("T")


class IdleTimer:
    """Fails any single wait that lasts longer than ``timeout`` seconds with ``error()``.

    For bounding each read or write of a request (an idle timeout) at the cost of one timer
    per request rather than one per await: the timer is armed by the first wait and, when it
    fires, either cancels the wait in progress (if that wait has lasted ``timeout``) or re-arms
    itself for when the current wait would time out. Call ``close()`` when the request ends,
    so that no timer outlives it; a wait still in progress then stays bounded, and the timer
    goes when it ends.
    """

    __slots__ = (
        "_closed",
        "_error",
        "_expired",
        "_handle",
        "_loop",
        "_since",
        "_task",
        "_timeout",
    )

    def __init__(self, timeout: float, error: Callable[[], BaseException]) -> None:
        self._timeout = timeout
        self._error = error
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None  # the task waiting, if any
        self._since = 0.0
        self._expired = False
        self._closed = False

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable``, failing with ``error()`` if it takes longer than the timeout."""
        self._since = self._loop.time()
        self._task = asyncio.current_task()
        if self._handle is None:
            self._handle = self._loop.call_at(self._since + self._timeout, self._fire)
        try:
            return await awaitable
        except asyncio.CancelledError as exc:
            if not self._expired:
                raise
            self._expired = False
            task = self._task
            if task is not None and hasattr(task, "uncancel"):
                task.uncancel()
            raise self._error() from exc
        finally:
            self._task = None
            if self._closed:
                self.close()

    def _fire(self) -> None:
        self._handle = None
        task = self._task
        if task is None:
            return  # not waiting now: the next wait arms the timer again
        due = self._since + self._timeout
        if self._loop.time() >= due:
            self._expired = True
            task.cancel()
        else:
            self._handle = self._loop.call_at(due, self._fire)

    @property
    def timeout(self) -> float:
        return self._timeout

    def close(self) -> None:
        self._closed = True
        if self._task is None and self._handle is not None:
            self._handle.cancel()
            self._handle = None
