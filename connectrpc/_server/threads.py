"""Run a sync call under its deadline: the call's work in a pool thread, the answer on time.

Python cannot interrupt a thread, so a WSGI server thread that ran an overrunning handler
itself could only answer when the handler returned. Instead a call with a deadline runs in a
worker thread from a bounded pool, producing its response as items (head, frames, end) into a
queue; the server's thread takes them, waiting at most until the deadline. If the deadline
passes first, the server's thread answers ``deadline_exceeded`` (``expire``), marks the
call's ``RequestContext`` cancelled, and leaves: the worker drops whatever it produces later
and closes the call's generator as soon as it yields again (the handler's ``finally`` blocks
and interceptors' ``on_end`` then run, in the worker). Calls without a deadline skip all
this and run in the server's thread.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import Generic, TypeVar

from connectrpc._server.context import RequestContext

__all__ = ["DeadlineThreads"]

T = TypeVar("T")


class _Done:
    """The worker's last item: the call ended, with ``error`` if its generator raised."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class _Pump(Generic[T]):
    """The worker's side: one call's items into a queue, until the call is given up."""

    __slots__ = ("_ctx", "_items", "queue")

    def __init__(self, items: Generator[T, None, None], ctx: RequestContext) -> None:
        self._items = items
        self._ctx = ctx
        self.queue: queue.SimpleQueue[T | _Done] = queue.SimpleQueue()

    def run(self) -> None:
        error: BaseException | None = None
        try:
            # A call given up while it waited for a thread does not start at all.
            while not self._ctx.is_cancelled():
                try:
                    item = next(self._items)
                except StopIteration:
                    break
                self.queue.put(item)
        except BaseException as exc:
            error = exc
        finally:
            self._items.close()
            self.queue.put(_Done(error))


class DeadlineThreads:
    """The pool of worker threads of one application, started on first use (so that a
    server that forks its workers, like gunicorn, starts them in each worker)."""

    def __init__(self, max_workers: int) -> None:
        self._max_workers = max_workers
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    self._max_workers, thread_name_prefix="connectrpc-deadline"
                )
            return self._pool

    def run(
        self,
        items: Generator[T, None, None],
        timeout: float,
        ctx: RequestContext,
        expire: Callable[[bool], T],
    ) -> Iterator[T]:
        """``items``, produced in a worker thread, until ``timeout`` seconds from now; then
        ``expire(started)`` as the last item, ``started`` telling whether any item went."""
        due = time.monotonic() + timeout
        pump = _Pump(items, ctx)
        self._executor().submit(pump.run)
        return self._take(pump, due, ctx, expire)

    @staticmethod
    def _take(
        pump: _Pump[T], due: float, ctx: RequestContext, expire: Callable[[bool], T]
    ) -> Iterator[T]:
        started = False
        try:
            while True:
                try:
                    item = pump.queue.get(timeout=max(0.0, due - time.monotonic()))
                except queue.Empty:
                    ctx._cancel()
                    yield expire(started)
                    return
                if isinstance(item, _Done):
                    if item.error is not None:
                        raise item.error
                    return
                started = True
                yield item
        except BaseException:
            # Closed early (the client went away): the worker stops at its next item.
            ctx._cancel()
            raise
