"""The async client: runs the shared call flows (``_client/core.py``) over an async transport.

This module is the async IO driver and nothing more: ``_run`` performs each operation a
flow yields with ``await``, ``_AsyncSource`` reads a response stream through the flows, and
request streams become body chunks as they are produced (``_client/request_stream.py``),
so a slow caller's async generator does not hold up what it already produced.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

import aiohttp
from google.protobuf.message import Message
from multidict import CIMultiDict

from connectrpc._client.core import (
    CLOSE,
    READ,
    SEND,
    ClientCore,
    ClientOptions,
    Flow,
    ResponseSource,
    advance,
)
from connectrpc._client.request_stream import frames_from
from connectrpc._core.error import ConnectError
from connectrpc._core.headers import HeaderInput
from connectrpc._transports.aiohttp import AiohttpTransport
from connectrpc._transports.base import AsyncTransport
from connectrpc.method import MethodInfo
from connectrpc.streams import StreamInput, StreamOutput
from connectrpc.unary import UnaryOutput

__all__ = ["AsyncConnectClient", "ClientOptions"]

T = TypeVar("T")
ReqT = TypeVar("ReqT", bound=Message)
ResT = TypeVar("ResT", bound=Message)


async def _run(flow: Flow[T], transport: AsyncTransport) -> T:
    """Drive ``flow`` to its result, awaiting each operation it yields."""
    done, out = advance(flow, None, None)
    while not done:
        try:
            kind = out[0]
            if kind == READ:
                value: Any = await out[1].read()
            elif kind == SEND:
                value = await transport.send(out[1])
            elif kind == CLOSE:
                value = await out[1].close(abort=out[2])
            else:
                value = await out[1]
        except BaseException as exc:
            done, out = advance(flow, None, exc)
            continue
        done, out = advance(flow, value, None)
    return out  # type: ignore[no-any-return]


class _AsyncSource(Generic[ResT]):
    """A response stream for ``StreamOutput``: each receive runs the shared flow."""

    __slots__ = ("_state", "_transport")

    def __init__(self, state: ResponseSource[ResT], transport: AsyncTransport) -> None:
        self._state = state
        self._transport = transport

    @property
    def headers(self) -> CIMultiDict[str]:
        return self._state.headers

    @property
    def trailers(self) -> CIMultiDict[str]:
        return self._state.trailers

    @property
    def error(self) -> ConnectError | None:
        return self._state.error

    async def receive(self) -> ResT | None:
        return await _run(self._state.next_message(), self._transport)

    async def aclose(self) -> None:
        await _run(self._state.stop(), self._transport)


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

    def _stream(
        self, result: tuple[ResponseSource[ResT], ConnectError | None]
    ) -> StreamOutput[ResT]:
        return StreamOutput(_AsyncSource(result[0], self._transport), result[1])

    # --- the four RPC shapes, in "call" (no raise) form ---------------------------------

    async def call_unary(
        self,
        method: MethodInfo[ReqT, ResT],
        request: ReqT,
        *,
        extra_headers: HeaderInput | None = None,
        timeout_seconds: float | None = None,
        use_get: bool = False,
    ) -> UnaryOutput[ResT]:
        """Call a unary method; the outcome, including any error, is in the result."""
        self._core.check_get(method, use_get)
        flow = self._core.unary_flow(method, request, None, extra_headers, timeout_seconds, use_get)
        return await _run(flow, self._transport)

    async def call_client_stream(
        self,
        method: MethodInfo[ReqT, ResT],
        requests: StreamInput[ReqT],
        *,
        extra_headers: HeaderInput | None = None,
        timeout_seconds: float | None = None,
    ) -> UnaryOutput[ResT]:
        """Call a client-streaming method; the outcome is in the result."""
        flow = self._core.unary_flow(method, None, requests, extra_headers, timeout_seconds)
        return await _run(flow, self._transport)

    async def call_server_stream(
        self,
        method: MethodInfo[ReqT, ResT],
        request: ReqT,
        *,
        extra_headers: HeaderInput | None = None,
        timeout_seconds: float | None = None,
    ) -> StreamOutput[ResT]:
        """Call a server-streaming method; iterate the result for responses."""
        flow = self._core.stream_flow(method, request, None, extra_headers, timeout_seconds)
        return self._stream(await _run(flow, self._transport))

    async def call_bidi_stream(
        self,
        method: MethodInfo[ReqT, ResT],
        requests: StreamInput[ReqT],
        *,
        extra_headers: HeaderInput | None = None,
        timeout_seconds: float | None = None,
    ) -> StreamOutput[ResT]:
        """Call a bidi method: full-duplex over HTTP/2 (``HTTP2Transport``), half-duplex
        over HTTP/1.1 (every request is sent before responses are read)."""
        flow = self._core.stream_flow(method, None, requests, extra_headers, timeout_seconds)
        return self._stream(await _run(flow, self._transport))

    # --- the raising forms ------------------------------------------------------------

    async def unary(
        self,
        method: MethodInfo[ReqT, ResT],
        request: ReqT,
        *,
        extra_headers: HeaderInput | None = None,
        timeout_seconds: float | None = None,
        use_get: bool = False,
    ) -> ResT:
        """Call a unary method and return its response; raises ``ConnectError``."""
        output = await self.call_unary(
            method,
            request,
            extra_headers=extra_headers,
            timeout_seconds=timeout_seconds,
            use_get=use_get,
        )
        return output.message_or_raise()

    async def client_stream(
        self,
        method: MethodInfo[ReqT, ResT],
        requests: StreamInput[ReqT],
        *,
        extra_headers: HeaderInput | None = None,
        timeout_seconds: float | None = None,
    ) -> ResT:
        """Call a client-streaming method and return its response; raises ``ConnectError``."""
        output = await self.call_client_stream(
            method, requests, extra_headers=extra_headers, timeout_seconds=timeout_seconds
        )
        return output.message_or_raise()

    def server_stream(
        self,
        method: MethodInfo[ReqT, ResT],
        request: ReqT,
        *,
        extra_headers: HeaderInput | None = None,
        timeout_seconds: float | None = None,
    ) -> AsyncIterator[ResT]:
        """Call a server-streaming method, yielding responses; raises ``ConnectError``.

        The call starts when iteration does.
        """
        return _raise_at_end(
            self.call_server_stream(
                method, request, extra_headers=extra_headers, timeout_seconds=timeout_seconds
            )
        )

    def bidi_stream(
        self,
        method: MethodInfo[ReqT, ResT],
        requests: StreamInput[ReqT],
        *,
        extra_headers: HeaderInput | None = None,
        timeout_seconds: float | None = None,
    ) -> AsyncIterator[ResT]:
        """Call a bidi method, yielding responses; raises ``ConnectError``.

        The call starts when iteration does.
        """
        return _raise_at_end(
            self.call_bidi_stream(
                method, requests, extra_headers=extra_headers, timeout_seconds=timeout_seconds
            )
        )


async def _raise_at_end(start: Awaitable[StreamOutput[ResT]]) -> AsyncIterator[ResT]:
    """Yield a stream's messages, then raise its error if it failed."""
    output = await start
    async with output:
        async for message in output:
            yield message
    error = output.error()
    if error is not None:
        raise error
