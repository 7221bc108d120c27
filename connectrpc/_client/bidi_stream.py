"""``BidiStream``: a bidi call driven step by step, sending and receiving in any order.

``client.converse(requests)`` takes an iterable, which suits a caller that knows its
requests up front or produces them from an async generator. A caller that must interleave,
for instance to decide the next request from the last reply, drives the call through a
handle instead::

    async with BidiStream.open(client.call_converse, timeout_seconds=30) as stream:
        await stream.send(ConverseRequest(sentence="Hello"))
        reply = await stream.receive()
        await stream.send(ConverseRequest(sentence="Goodbye"))
        stream.close_send()
        async for reply in stream:
            ...
    stream.error()  # the outcome, once the stream has ended

Full duplex needs HTTP/2 (``HTTP2Transport``, or the in-memory transport); over HTTP/1.1
the request stream must be closed before any reply can arrive. Leaving ``async with`` (or
``close()``) before the end cancels the call: the transport resets the stream.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Generic, Protocol, TypeVar

from multidict import CIMultiDict

from connectrpc._core.code import Code
from connectrpc._core.error import ConnectError, canceled
from connectrpc._core.headers import HeaderInput
from connectrpc.streams import StreamInput, StreamOutput

__all__ = ["BidiCall", "BidiStream"]

ReqT = TypeVar("ReqT")
ResT = TypeVar("ResT")
ReqT_contra = TypeVar("ReqT_contra", contravariant=True)

_CLOSE = object()


class BidiCall(Protocol[ReqT_contra, ResT]):
    """A generated client's ``call_<bidi method>``, or a bound
    ``AsyncConnectClient.call_bidi_stream`` with its method given (``functools.partial``)."""

    def __call__(
        self,
        reqs: StreamInput[ReqT_contra],
        /,
        *,
        extra_headers: HeaderInput | None = ...,
        timeout_seconds: float | None = ...,
    ) -> Awaitable[StreamOutput[ResT]]: ...


class _Channel(Generic[ReqT]):
    """Requests from ``send`` to the transport: one pending at a time, so a caller that
    sends faster than the network takes them waits, and nothing buffers without bound."""

    __slots__ = ("_consumer", "_ended", "_items", "_producer")

    def __init__(self) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._producer: asyncio.Future[None] | None = None  # send() waiting for room
        self._consumer: asyncio.Future[None] | None = None  # the transport waiting for one
        self._ended = False

    @staticmethod
    def _wake(waiter: asyncio.Future[None] | None) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def put(self, item: Any) -> bool:
        """Queue ``item``; ``False`` if the call ended (nobody will take it)."""
        while self._items and not self._ended:
            self._producer = asyncio.get_running_loop().create_future()
            await self._producer
        if self._ended:
            return False
        self._items.append(item)
        self._wake(self._consumer)
        return True

    def end(self) -> None:
        self._ended = True
        self._wake(self._producer)
        self._wake(self._consumer)

    async def messages(self) -> AsyncIterator[ReqT]:
        try:
            while True:
                if self._items:
                    item = self._items.popleft()
                    self._wake(self._producer)
                    if item is _CLOSE:
                        return
                    yield item
                elif self._ended:
                    return
                else:
                    self._consumer = asyncio.get_running_loop().create_future()
                    await self._consumer
        finally:
            # The transport stopped taking requests (the call ended or was reset).
            self.end()


class BidiStream(Generic[ReqT, ResT]):
    """A bidi call in progress: ``send``/``close_send`` requests, ``receive`` or iterate
    replies, then read ``error()`` and ``response_trailers()``. Open with ``open``."""

    __slots__ = ("_channel", "_closed_send", "_done", "_error", "_output", "_start")

    def __init__(
        self,
        call: BidiCall[ReqT, ResT],
        *,
        extra_headers: HeaderInput | None = None,
        timeout_seconds: float | None = None,
    ) -> None:
        self._channel: _Channel[ReqT] = _Channel()
        self._closed_send = False
        self._done = False
        self._error: ConnectError | None = None
        self._output: StreamOutput[ResT] | None = None
        # The call starts at once, without waiting for the response head: many servers
        # send it only with their first reply, which may wait for our first request.
        self._start: asyncio.Future[StreamOutput[ResT]] = asyncio.ensure_future(
            call(
                self._channel.messages(),
                extra_headers=extra_headers,
                timeout_seconds=timeout_seconds,
            )
        )

    @classmethod
    def open(
        cls,
        call: BidiCall[ReqT, ResT],
        *,
        extra_headers: HeaderInput | None = None,
        timeout_seconds: float | None = None,
    ) -> BidiStream[ReqT, ResT]:
        """Start a bidi call; ``call`` is the generated client's ``call_<method>``."""
        return cls(call, extra_headers=extra_headers, timeout_seconds=timeout_seconds)

    async def __aenter__(self) -> BidiStream[ReqT, ResT]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def send(self, message: ReqT) -> None:
        """Send one request. Waits while the previous one has not been taken by the
        transport. Raises ``ConnectError`` if the call has already ended (read the
        outcome with ``receive``/``error``) and ``RuntimeError`` after ``close_send``."""
        if self._closed_send:
            raise RuntimeError("send() after close_send(): the request stream is closed")
        if not await self._channel.put(message):
            raise self._error or ConnectError(
                Code.FAILED_PRECONDITION,
                "the call has ended: no more requests can be sent; receive() tells why",
            )

    def close_send(self) -> None:
        """End the request stream (the server sees its end); replies can still arrive."""
        if not self._closed_send:
            self._closed_send = True
            self._channel._items.append(_CLOSE)
            _Channel._wake(self._channel._consumer)

    async def _started(self) -> StreamOutput[ResT] | None:
        if self._output is None and not self._done:
            try:
                self._output = await self._start
            except ConnectError as exc:
                self._finish(exc)
            except BaseException:
                self._finish(canceled())
                raise
        return self._output

    def _finish(self, error: ConnectError | None) -> None:
        if not self._done:
            self._done = True
            self._error = error
            self._channel.end()

    async def receive(self) -> ResT | None:
        """The next reply, or ``None`` once the stream has ended (then see ``error()``)."""
        output = await self._started()
        if output is None or self._done:
            return None
        try:
            return await output.__anext__()
        except StopAsyncIteration:
            self._finish(output.error())
            return None

    def __aiter__(self) -> AsyncIterator[ResT]:
        return self._replies()

    async def _replies(self) -> AsyncIterator[ResT]:
        while (reply := await self.receive()) is not None:
            yield reply

    async def response_headers(self) -> CIMultiDict[str]:
        """The response headers, once they have arrived (this waits for them)."""
        output = await self._started()
        return CIMultiDict() if output is None else output.response_headers()

    def response_trailers(self) -> CIMultiDict[str]:
        """The response trailers, once the stream has ended."""
        if not self._done:
            raise RuntimeError(
                "response trailers arrive at the end of the stream: receive until it ends"
            )
        return CIMultiDict() if self._output is None else self._output.response_trailers()

    def error(self) -> ConnectError | None:
        """The call's error once the stream has ended, else ``None``."""
        return self._error

    async def close(self) -> None:
        """Cancel the call if it has not ended; safe to call more than once."""
        if not self._done:
            self._finish(ConnectError(Code.CANCELED, "the stream was closed before its end"))
        self._channel.end()
        if self._output is None:
            if not self._start.done():
                self._start.cancel()
            try:
                self._output = await self._start
            except BaseException:
                return
        await self._output.close()
