"""``CancelToken``: cancel a blocking call from another thread.

An asyncio caller cancels a call by cancelling its task. A thread blocked in a socket read
has no such handle, so sync calls take a token: ``cancel()`` (from any thread, any number
of times) runs the callbacks the call's transport registered, which shut the socket down so
the blocked read returns at once; the call then fails with ``canceled`` and its connection
is discarded, never reused.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

__all__ = ["CancelToken"]


class CancelToken:
    """Cancels the calls it is passed to (``cancel=token``); thread-safe, one-shot."""

    __slots__ = ("_callbacks", "_cancelled", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], object]] = []
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        """Whether ``cancel()`` has been called."""
        return self._cancelled

    def cancel(self) -> None:
        """Cancel every call using this token, now and later. Safe from any thread."""
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Run ``callback`` on cancellation (at once if already cancelled); returns a
        function that unregisters it, for when the call is over."""
        with self._lock:
            if not self._cancelled:
                self._callbacks.append(callback)
                return lambda: self._remove(callback)
        callback()
        return _nothing

    def _remove(self, callback: Callable[[], object]) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._callbacks.remove(callback)


def _nothing() -> None:
    return None
