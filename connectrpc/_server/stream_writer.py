"""Coalesce the frames of a streaming response into fewer ASGI sends.

Each ASGI ``send`` costs a server round of framing and a socket write, which dominates the
cost of small streamed messages. The handler's frames are queued without waiting; a writer
task sends everything queued as one body chunk whenever the handler's task yields to the
event loop. Messages produced back to back therefore share a write, while a message followed
by a pause (the handler awaiting something) goes out at once, so batching adds no latency.
A full buffer makes the producer wait for the writer, bounding memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["BatchingSender"]

_BUFFER_LIMIT = 64 * 1024


class BatchingSender:
    """Queues ``http.response.body`` chunks and sends them in batches from a writer task."""

    __slots__ = (
        "_closing",
        "_failure",
        "_frames",
        "_ready",
        "_send",
        "_size",
        "_space",
        "_task",
    )

    def __init__(self, send: Callable[[Any], Awaitable[None]]) -> None:
        self._send = send
        self._frames: list[bytes] = []
        self._size = 0
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def write(self, frame: bytes) -> None:
        """Queue ``frame``; waits only while the buffer is full."""
        if self._failure is not None:
            raise self._failure
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        self._frames.append(frame)
        self._size += len(frame)
        self._ready.set()
        if self._size >= _BUFFER_LIMIT:
            self._space.clear()
            await self._space.wait()
            if self._failure is not None:
                raise self._failure

    async def _run(self) -> None:
        try:
            while True:
                await self._ready.wait()
                self._ready.clear()
                if self._frames:
                    frames = self._frames
                    body = b"".join(frames) if len(frames) > 1 else frames[0]
                    frames.clear()
                    self._size = 0
                    self._space.set()
                    await self._send(
                        {"type": "http.response.body", "body": body, "more_body": True}
                    )
                if self._closing and not self._frames:
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failure = exc
            self._space.set()

    async def finish(self, last: bytes, trailers: list[tuple[bytes, bytes]] | None = None) -> None:
        """Send whatever is queued, then ``last`` as the final chunk of the body, then the
        HTTP ``trailers`` if given (the ASGI ``http.response.trailers`` extension)."""
        if self._task is not None:
            self._closing = True
            self._ready.set()
            await self._task
            self._task = None
        if self._failure is not None:
            raise self._failure
        await self._send({"type": "http.response.body", "body": last, "more_body": False})
        if trailers is not None:
            await self._send(
                {"type": "http.response.trailers", "headers": trailers, "more_trailers": False}
            )

    @property
    def failed(self) -> bool:
        """Whether a send failed (the connection is gone)."""
        return self._failure is not None

    def abort(self) -> None:
        """Stop the writer without sending what is queued (the client is gone)."""
        if self._task is not None:
            self._task.cancel()
