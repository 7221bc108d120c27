"""Streaming types: ``StreamInput`` for request streams, ``StreamOutput`` (async) and
``SyncStreamOutput`` for response streams."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Generic, Protocol, TypeVar

from multidict import CIMultiDict

from connectrpc._core.code import Code
from connectrpc._core.error import ConnectError, detached

__all__ = ["StreamInput", "StreamOutput", "SyncStreamOutput"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

StreamInput = Iterable[T] | AsyncIterable[T]
"""Request messages for a client-streaming or bidi RPC: any iterable or async iterable."""


class _Outcome(Protocol):
    """What both stream outputs show of their call."""

    @property
    def headers(self) -> CIMultiDict[str]: ...

    @property
    def trailers(self) -> CIMultiDict[str]: ...

    @property
    def error(self) -> ConnectError | None: ...


class _Source(_Outcome, Protocol[T_co]):
    """What ``StreamOutput`` reads from (implemented by the async client)."""

    async def receive(self) -> T_co | None: ...

    async def aclose(self) -> None: ...


class _SyncSource(_Outcome, Protocol[T_co]):
    """What ``SyncStreamOutput`` reads from (implemented by the sync client)."""

    def receive(self) -> T_co | None: ...

    def close(self) -> None: ...

    def interrupt(self) -> None:
        """Abort a ``receive`` blocked in another thread."""


class _Output(Generic[T]):
    """What both stream outputs share: the outcome, headers and trailers."""

    __slots__ = ("_done", "_error", "_source")

    _source: _Source[T] | _SyncSource[T]

    def __init__(self, error: ConnectError | None) -> None:
        self._error = error
        self._done = error is not None

    def _settle(self, message: T | None, error: ConnectError | None) -> T | None:
        """The result of one receive: the message, or ``None`` once the stream has ended
        (with ``error`` if the receive failed, else the status the server sent)."""
        if error is not None:
            self._done = True
            self._error = detached(error)
            return None
        if message is None:
            self._done = True
            self._error = self._source.error
        return message

    def _cancel(self) -> None:
        if not self._done:
            self._done = True
            self._error = ConnectError(Code.CANCELED, "the stream was closed before its end")

    def error(self) -> ConnectError | None:
        """The RPC's error once the stream has ended, else ``None``."""
        return self._error

    def response_headers(self) -> CIMultiDict[str]:
        """The response headers (available as soon as the call returns)."""
        return self._source.headers

    def response_trailers(self) -> CIMultiDict[str]:
        """The response trailers; only available once the stream has been fully consumed."""
        if not self._done:
            raise RuntimeError(
                "response trailers arrive at the end of the stream: iterate over every "
                "message (or wait for iteration to stop) before calling response_trailers()"
            )
        return self._source.trailers


class StreamOutput(_Output[T]):
    """The response stream of a server-streaming or bidi RPC, from the async client.

    Iterate over it (``async for``) to receive messages. Iteration ends cleanly when the
    stream ends, whether or not the RPC succeeded: check ``error()`` afterwards. Use it as an
    async context manager (or call ``close()``) so the connection is released even when you
    stop reading early.
    """

    __slots__ = ()

    def __init__(self, source: _Source[T], error: ConnectError | None = None) -> None:
        super().__init__(error)
        self._source: _Source[T] = source

    async def __aenter__(self) -> StreamOutput[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __aiter__(self) -> StreamOutput[T]:
        return self

    async def __anext__(self) -> T:
        if self._done:
            raise StopAsyncIteration
        try:
            message = self._settle(await self._source.receive(), None)
        except ConnectError as exc:
            message = self._settle(None, exc)
        if message is None:
            raise StopAsyncIteration
        return message

    async def close(self) -> None:
        """Stop receiving and release the connection. Safe to call more than once.

        Closing a stream before its end cancels the RPC: ``error()`` then reports
        ``canceled``, and the trailers are empty.
        """
        self._cancel()
        await self._source.aclose()


class SyncStreamOutput(_Output[T]):
    """The response stream of a server-streaming or bidi RPC, from the sync client.

    Iterate over it (``for``) to receive messages; iteration ends cleanly when the stream
    ends, whether or not the RPC succeeded: check ``error()`` afterwards. Use it in a
    ``with`` block (or call ``close()``) so the connection is released even when you stop
    reading early. ``close()`` may be called from another thread: a ``for`` loop blocked
    waiting for the next message then ends at once, and ``error()`` reports ``canceled``.
    """

    __slots__ = ("_reading",)

    def __init__(self, source: _SyncSource[T], error: ConnectError | None = None) -> None:
        super().__init__(error)
        self._source: _SyncSource[T] = source
        self._reading = False

    def __enter__(self) -> SyncStreamOutput[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> SyncStreamOutput[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        self._reading = True
        try:
            message = self._settle(self._source.receive(), None)
        except ConnectError as exc:
            message = self._settle(None, exc)
        finally:
            self._reading = False
        if message is None:
            raise StopIteration
        return message

    def close(self) -> None:
        """Stop receiving and release the connection. Safe to call more than once, and
        from another thread.

        Closing a stream before its end cancels the RPC: ``error()`` then reports
        ``canceled``, and the trailers are empty.
        """
        self._cancel()
        if self._reading:
            # Another thread is blocked in receive: abort its read; that thread then
            # finishes the call (and releases the connection) as it wakes.
            self._source.interrupt()
        else:
            self._source.close()
