"""The sync client: runs the shared call flows (``_client/core.py``) with blocking IO.

This module is the sync side and nothing more: ``core.run_blocking`` performs each
operation a flow yields by calling the transport (the one driver of both clients, run
without an event loop), ``_SyncSource`` reads a response stream through the flows, and
request messages become body chunks as the caller's iterable yields them. The protocol,
error and interceptor logic is the async client's, because it is the same code.

Blocking calls cannot be cancelled the way an asyncio task is, so cancellation is explicit:
pass ``cancel=CancelToken()`` and call ``token.cancel()`` from any thread, or close a
``SyncStreamOutput`` from another thread. Either aborts the socket read the call is blocked
in; the call ends ``canceled`` and its connection is discarded.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.message import Message

from connectrpc._client.core import (
    ASYNC_HOOK,
    ClientCore,
    ClientOptions,
    Flow,
    ResponseSource,
    SourceBase,
    SyncCallOptions,
    SyncUnaryCallOptions,
    refuse_awaitable,
    run_blocking,
)
from connectrpc._client.request_stream import coalesce
from connectrpc._core.error import ConnectError
from connectrpc._transports.base import SyncTransport
from connectrpc._transports.sync_http1 import SyncHTTP1Transport
from connectrpc.method import MethodInfo
from connectrpc.streams import SyncStreamOutput
from connectrpc.unary import UnaryOutput

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["ConnectClient"]

T = TypeVar("T")
ReqT = TypeVar("ReqT", bound=Message)
ResT = TypeVar("ResT", bound=Message)


class _SyncSource(SourceBase[ResT]):
    """A response stream for ``SyncStreamOutput``: each receive runs the shared flow."""

    __slots__ = ()

    def receive(self) -> ResT | None:
        message = self._source.ready_message()
        if message is None:
            message = run_blocking(self._source.next_message(), self._transport.send)
        return message

    def close(self) -> None:
        run_blocking(self._source.stop(), self._transport.send)

    def interrupt(self) -> None:
        response = self._source.response
        if response is not None:
            response.close(abort=True)


def _frames(
    requests: Iterable[Message],
    frame: Callable[[Message], bytes],
    on_request: Callable[[Message], Any] | None,
) -> Iterator[bytes]:
    if isinstance(requests, AsyncIterable):
        raise TypeError(
            "the sync client sends request streams from plain iterables (lists, generators); "
            "use the async client for async iterables"
        )
    if on_request is not None:
        requests = map(_plain(on_request), requests)
    return coalesce(map(frame, requests))


def _plain(on_request: Callable[[Message], Any]) -> Callable[[Message], Message]:
    def seen(message: Message) -> Message:
        result = on_request(message)
        if not isinstance(result, Message):
            refuse_awaitable(result)
        return result

    return seen


class ConnectClient:
    """A blocking client for one base URL, shared by all generated sync service clients.

    ``http_client`` is the ``SyncTransport`` to send through; by default the client makes a
    ``SyncHTTP1Transport`` (HTTP/1.1 keep-alive pool). ``close()`` (or ``with``) closes the
    transport's idle connections. One client may be used from many threads at once.
    """

    def __init__(
        self,
        base_url: str,
        http_client: SyncTransport | None = None,
        *,
        options: ClientOptions | None = None,
    ) -> None:
        if http_client is None:
            http_client = SyncHTTP1Transport()
        elif not isinstance(http_client, SyncTransport):
            raise TypeError(
                f"the sync client sends through a connectrpc.client.SyncTransport, not "
                f"{type(http_client).__name__}: pass SyncHTTP1Transport() (or nothing), or "
                "use the Async…Client for aiohttp sessions and async transports"
            )
        self._transport = http_client
        self._core = ClientCore(
            base_url,
            options,
            transport_name=type(http_client).__name__,
            supports_trailers=http_client.supports_trailers,
            frames=_frames,
        )
        self._core.refuse_async_hooks(ASYNC_HOOK)  # at construction, naming the hook

    def close(self) -> None:
        """Close the transport's connections."""
        self._transport.close()

    def __enter__(self) -> ConnectClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _stream(
        self, flow: Flow[tuple[ResponseSource[ResT], ConnectError | None]]
    ) -> SyncStreamOutput[ResT]:
        source, error = run_blocking(flow, self._transport.send)
        return SyncStreamOutput(_SyncSource(source, self._transport), error)

    # --- the four RPC shapes, in "call" (no raise) form ---------------------------------
    # Each takes ``extra_headers``, ``timeout_seconds`` and ``cancel`` (``SyncCallOptions``);
    # unary calls also ``use_get``.

    def call_unary(
        self, method: MethodInfo[ReqT, ResT], request: ReqT, **options: Unpack[SyncUnaryCallOptions]
    ) -> UnaryOutput[ResT]:
        """Call a unary method; the outcome, including any error, is in the result."""
        return run_blocking(
            self._core.unary_flow(method, request, None, options), self._transport.send
        )

    def call_client_stream(
        self,
        method: MethodInfo[ReqT, ResT],
        requests: Iterable[ReqT],
        **options: Unpack[SyncCallOptions],
    ) -> UnaryOutput[ResT]:
        """Call a client-streaming method; the outcome is in the result."""
        return run_blocking(
            self._core.unary_flow(method, None, requests, options), self._transport.send
        )

    def call_server_stream(
        self, method: MethodInfo[ReqT, ResT], request: ReqT, **options: Unpack[SyncCallOptions]
    ) -> SyncStreamOutput[ResT]:
        """Call a server-streaming method; iterate the result for responses."""
        return self._stream(self._core.stream_flow(method, request, None, options))

    def call_bidi_stream(
        self,
        method: MethodInfo[ReqT, ResT],
        requests: Iterable[ReqT],
        **options: Unpack[SyncCallOptions],
    ) -> SyncStreamOutput[ResT]:
        """Call a bidi method, half-duplex: every request is sent, then responses read."""
        return self._stream(self._core.stream_flow(method, None, requests, options))

    # --- the raising forms ------------------------------------------------------------

    def unary(
        self, method: MethodInfo[ReqT, ResT], request: ReqT, **options: Unpack[SyncUnaryCallOptions]
    ) -> ResT:
        """Call a unary method and return its response; raises ``ConnectError``."""
        return self.call_unary(method, request, **options).message_or_raise()

    def client_stream(
        self,
        method: MethodInfo[ReqT, ResT],
        requests: Iterable[ReqT],
        **options: Unpack[SyncCallOptions],
    ) -> ResT:
        """Call a client-streaming method and return its response; raises ``ConnectError``."""
        return self.call_client_stream(method, requests, **options).message_or_raise()

    def server_stream(
        self, method: MethodInfo[ReqT, ResT], request: ReqT, **options: Unpack[SyncCallOptions]
    ) -> Iterator[ResT]:
        """Call a server-streaming method, yielding responses; raises ``ConnectError``.
        The call starts when iteration does."""
        return _raise_at_end(lambda: self.call_server_stream(method, request, **options))

    def bidi_stream(
        self,
        method: MethodInfo[ReqT, ResT],
        requests: Iterable[ReqT],
        **options: Unpack[SyncCallOptions],
    ) -> Iterator[ResT]:
        """Call a bidi method (half-duplex), yielding responses; raises ``ConnectError``.
        The call starts when iteration does."""
        return _raise_at_end(lambda: self.call_bidi_stream(method, requests, **options))


def _raise_at_end(start: Callable[[], SyncStreamOutput[ResT]]) -> Iterator[ResT]:
    """Yield a stream's messages, then raise its error if it failed."""
    with start() as output:
        yield from output
    error = output.error()
    if error is not None:
        raise error
