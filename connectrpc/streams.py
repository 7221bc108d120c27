"""Streaming types: ``StreamInput`` for request streams, ``StreamOutput`` for response streams."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from types import TracebackType
from typing import Generic, Protocol, TypeVar

from multidict import CIMultiDict

from connectrpc._core.code import Code
from connectrpc._core.error import ConnectError, detached

__all__ = ["StreamInput", "StreamOutput"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

StreamInput = Iterable[T] | AsyncIterable[T]
"""Request messages for a client-streaming or bidi RPC: any iterable or async iterable."""


class _Source(Protocol[T_co]):
    """What ``StreamOutput`` reads from (implemented by the client's call machinery)."""

    @property
    def headers(self) -> CIMultiDict[str]: ...

    @property
    def trailers(self) -> CIMultiDict[str]: ...

    @property
    def error(self) -> ConnectError | None: ...

    async def receive(self) -> T_co | None: ...

    async def aclose(self) -> None: ...


class StreamOutput(Generic[T]):
    """The response stream of a server-streaming or bidi RPC.

    Iterate over it (``async for``) to receive messages. Iteration ends cleanly when the
    stream ends, whether or not the RPC succeeded: check ``error()`` afterwards. Use it as an
    async context manager (or call ``close()``) so the connection is released even when you
    stop reading early.
    """

    __slots__ = ("_done", "_error", "_source")

    def __init__(self, source: _Source[T], error: ConnectError | None = None) -> None:
        self._source = source
        self._error = error
        self._done = error is not None

    async def __aenter__(self) -> StreamOutput[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __aiter__(self) -> StreamOutput[T]:
        return self

    async def __anext__(self) -> T:
        if self._done:
            raise StopAsyncIteration
        try:
            message = await self._source.receive()
        except ConnectError as exc:
            self._done = True
            self._error = detached(exc)
            await self._source.aclose()
            raise StopAsyncIteration from None
        if message is None:
            self._done = True
            self._error = self._source.error
            raise StopAsyncIteration
        return message

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

    async def close(self) -> None:
        """Stop receiving and release the connection. Safe to call more than once.

        Closing a stream before its end cancels the RPC: ``error()`` then reports
        ``canceled``, and the trailers are empty.
        """
        if not self._done:
            self._done = True
            self._error = ConnectError(Code.CANCELED, "the stream was closed before its end")
        await self._source.aclose()
