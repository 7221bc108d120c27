"""Cancel the current task when a deadline passes, and report it as ``deadline_exceeded``.

``asyncio.timeout`` does this from Python 3.11; this small equivalent also runs on 3.10 and
raises the RPC error directly, so handlers and clients see one error type.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from ._code import Code
from ._error import ConnectError

__all__ = ["Deadline", "deadline_exceeded"]


def deadline_exceeded() -> ConnectError:
    """The error every layer reports when an RPC's deadline passes."""
    return ConnectError(Code.DEADLINE_EXCEEDED, "the RPC deadline was exceeded")


class Deadline:
    """``with Deadline(seconds):`` cancels the enclosed work after ``seconds`` (None: never)."""

    __slots__ = ("_expired", "_handle", "_task", "_timeout")

    def __init__(self, timeout: float | None) -> None:
        self._timeout = timeout
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
            raise deadline_exceeded() from exc

    @property
    def expired(self) -> bool:
        return self._expired
