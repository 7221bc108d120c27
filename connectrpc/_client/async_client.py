"""The async client: runs the shared call flows (``_client/core.py``) over an async transport.

This module is the async side and nothing more: ``core.run`` performs each operation a
flow yields with ``await``, ``_AsyncSource`` reads a response stream through the flows, and
request streams become body chunks as they are produced (``_client/request_stream.py``),
so a slow caller's async generator does not hold up what it already produced.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import aiohttp
from google.protobuf.message import Message

from connectrpc._client.core import (
    CallOptions,
    ClientCore,
    ClientOptions,
    Flow,
    ResponseSource,
    SourceBase,
    UnaryCallOptions,
    ready_async,
    run,
)
from connectrpc._client.request_stream import frames_from
from connectrpc._core.error import ConnectError
from connectrpc._transports.aiohttp import AiohttpTransport
from connectrpc._transports.base import AsyncTransport
from connectrpc.method import MethodInfo
from connectrpc.streams import StreamInput, StreamOutput
from connectrpc.unary import UnaryOutput

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["AsyncConnectClient", "ClientOptions"]

T = TypeVar("T")
ReqT = TypeVar("ReqT", bound=Message)
ResT = TypeVar("ResT", bound=Message)


class _AsyncSource(SourceBase[ResT]):
    """A response stream for ``StreamOutput``: each receive runs the shared flow."""

    __slots__ = ()

    async def receive(self) -> ResT | None:
        message = self._source.ready_message()
        if message is None:
            message = await run(self._source.next_message(), self._transport.send, ready_async)
        return message

    async def aclose(self) -> None:
        await run(self._source.stop(), self._transport.send, ready_async)


def _frames(
    requests: StreamInput[Message],
    frame: Callable[[Message], bytes],
    on_request: Callable[[Message], Message | Awaitable[Message]] | None,
) -> AsyncIterator[bytes]:
    if on_request is not None:
        requests = _requests_through(on_request, requests)
    return frames_from(requests, frame)


async def _requests_through(
    on_request: Callable[[Message], Message | Awaitable[Message]], requests: StreamInput[Message]
) -> AsyncIterator[Message]:
    """The caller's request messages, each through the interceptors' ``on_request``."""
    if isinstance(requests, AsyncIterable):
        async for message in requests:
            seen = on_request(message)
            yield seen if isinstance(seen, Message) else await seen
    else:
        for message in requests:
            seen = on_request(message)
            yield seen if isinstance(seen, Message) else await seen


class AsyncConnectClient:
    """A Connect client for one base URL, shared by all generated service clients.

    ``http_client`` is the ``aiohttp.ClientSession`` to send requests through (the caller
    keeps ownership), or an ``AsyncTransport`` (for instance an in-memory one for tests). With
    neither, the client makes its own session; close it with ``close()`` or ``async with``.
    """

    def __init__(
        self,
        base_url: str,
        http_client: aiohttp.ClientSession | AsyncTransport | None = None,
        *,
        options: ClientOptions | None = None,
    ) -> None:
        if isinstance(http_client, AsyncTransport):
            self._transport: AsyncTransport = http_client
        else:
            self._transport = AiohttpTransport(http_client)
        self._core = ClientCore(
            base_url,
            options,
            transport_name=type(self._transport).__name__,
            supports_trailers=self._transport.supports_trailers,
            frames=_frames,
        )

    async def close(self) -> None:
        """Close the HTTP session if this client created it."""
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncConnectClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _run(self, flow: Flow[T]) -> Awaitable[T]:
        return run(flow, self._transport.send, ready_async)

    def _stream(
        self, result: tuple[ResponseSource[ResT], ConnectError | None]
    ) -> StreamOutput[ResT]:
        return StreamOutput(_AsyncSource(result[0], self._transport), result[1])

    # --- the four RPC shapes, in "call" (no raise) form ---------------------------------

    async def call_unary(
        self, method: MethodInfo[ReqT, ResT], request: ReqT, **options: Unpack[UnaryCallOptions]
    ) -> UnaryOutput[ResT]:
        """Call a unary method; the outcome, including any error, is in the result."""
        return await self._run(self._core.unary_flow(method, request, None, options))

    async def call_client_stream(
        self,
        method: MethodInfo[ReqT, ResT],
        requests: StreamInput[ReqT],
        **options: Unpack[CallOptions],
    ) -> UnaryOutput[ResT]:
        """Call a client-streaming method; the outcome is in the result."""
        flow = self._core.unary_flow(method, None, requests, options)
        return await self._run(flow)

    async def call_server_stream(
        self, method: MethodInfo[ReqT, ResT], request: ReqT, **options: Unpack[CallOptions]
    ) -> StreamOutput[ResT]:
        """Call a server-streaming method; iterate the result for responses."""
        flow = self._core.stream_flow(method, request, None, options)
        return self._stream(await self._run(flow))

    async def call_bidi_stream(
        self,
        method: MethodInfo[ReqT, ResT],
        requests: StreamInput[ReqT],
        **options: Unpack[CallOptions],
    ) -> StreamOutput[ResT]:
        """Call a bidi method: full-duplex over HTTP/2 (``HTTP2Transport``), half-duplex
        over HTTP/1.1 (every request is sent before responses are read)."""
        flow = self._core.stream_flow(method, None, requests, options)
        return self._stream(await self._run(flow))

    # --- the raising forms ------------------------------------------------------------

    async def unary(
        self, method: MethodInfo[ReqT, ResT], request: ReqT, **options: Unpack[UnaryCallOptions]
    ) -> ResT:
        """Call a unary method and return its response; raises ``ConnectError``."""
        return (await self.call_unary(method, request, **options)).message_or_raise()

    async def client_stream(
        self,
        method: MethodInfo[ReqT, ResT],
        requests: StreamInput[ReqT],
        **options: Unpack[CallOptions],
    ) -> ResT:
        """Call a client-streaming method and return its response; raises ``ConnectError``."""
        return (await self.call_client_stream(method, requests, **options)).message_or_raise()

    def server_stream(
        self, method: MethodInfo[ReqT, ResT], request: ReqT, **options: Unpack[CallOptions]
    ) -> AsyncIterator[ResT]:
        """Call a server-streaming method, yielding responses; raises ``ConnectError``.
        The call starts when iteration does."""
        return _raise_at_end(self.call_server_stream(method, request, **options))

    def bidi_stream(
        self,
        method: MethodInfo[ReqT, ResT],
        requests: StreamInput[ReqT],
        **options: Unpack[CallOptions],
    ) -> AsyncIterator[ResT]:
        """Call a bidi method, yielding responses; raises ``ConnectError``. The call starts
        when iteration does."""
        return _raise_at_end(self.call_bidi_stream(method, requests, **options))


async def _raise_at_end(start: Awaitable[StreamOutput[ResT]]) -> AsyncIterator[ResT]:
    """Yield a stream's messages, then raise its error if it failed."""
    output = await start
    async with output:
        async for message in output:
            yield message
    error = output.error()
    if error is not None:
        raise error
