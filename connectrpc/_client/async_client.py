"""The async client: runs calls through a protocol (pure) over a transport (IO).

Every RPC shape goes through one path: build the request head, send the body (bytes for
unary and server-streaming calls, a stream of envelopes otherwise), validate the response
head, then pull body chunks through the protocol's decoder. Unary-response calls collect
exactly one message; streaming calls hand the decoder to ``StreamOutput``.
"""

from __future__ import annotations

import collections
import functools
import urllib.parse
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import aiohttp
from google.protobuf.message import Message
from multidict import CIMultiDict

from connectrpc._aio.deadline import deadline_exceeded
from connectrpc._aio.interceptors import InterceptorChain
from connectrpc._client.request_stream import frames_from
from connectrpc._core import compression as _compression
from connectrpc._core.buffer import ChunkBuffer
from connectrpc._core.code import Code
from connectrpc._core.codec import CODECS, Codec, CodecError
from connectrpc._core.error import ConnectError, detached
from connectrpc._core.headers import HeaderInput, to_multidict
from connectrpc._core.interceptor import Call, Interceptor, Peer
from connectrpc._protocol.client import ClientProtocol, ResponseDecoder
from connectrpc._protocol.connect import ConnectClientProtocol, merge_headers
from connectrpc._protocol.grpc import GrpcClientProtocol
from connectrpc._transports.aiohttp import AiohttpTransport
from connectrpc._transports.base import AsyncTransport, HTTPRequest, TransportResponse
from connectrpc._version import __version__
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.streams import StreamInput, StreamOutput
from connectrpc.unary import UnaryOutput

__all__ = ["AsyncConnectClient", "ClientOptions"]

ReqT = TypeVar("ReqT", bound=Message)
ResT = TypeVar("ResT", bound=Message)

_DEFAULT_READ_MAX_BYTES = 64 * 1024 * 1024

_PROTOCOLS: dict[str, Callable[[Codec, tuple[str, ...], str, int | None], ClientProtocol]] = {
    "connect": ConnectClientProtocol,
    "grpc-web": functools.partial(GrpcClientProtocol, web=True),
    "grpc": functools.partial(GrpcClientProtocol, web=False),
}
_ERROR_BODY_MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ClientOptions:
    """How a client talks to its server. Every field has a working default.

    Attributes:
        protocol: the wire protocol: ``"connect"``, ``"grpc-web"`` or ``"grpc"`` (which
            needs HTTP/2 with trailers: ``HTTP2Transport``).
        codec: ``"proto"`` (binary protobuf) or ``"json"`` (protobuf's canonical JSON).
        send_compression: compress request messages with this (``"gzip"``, ``"br"``,
            ``"zstd"``), or ``None`` to send them uncompressed.
        accept_compression: compressions the server may use for responses, in order of
            preference; ``None`` means every one installed.
        compress_min_bytes: messages smaller than this are sent uncompressed.
        read_max_bytes: the largest response message accepted, measured after
            decompression; larger ones fail with ``resource_exhausted``. ``None`` disables
            the limit.
        user_agent: the ``user-agent`` header.
        get_url_max_bytes: calls made with ``use_get=True`` whose URL path and query would be
            longer than this are sent as POST instead (servers commonly refuse URLs over 8 to
            16 KiB, and the method is idempotent either way).
        interceptors: run around every call, the first one outermost
            (``connectrpc.interceptors``).
    """

    protocol: str = "connect"
    codec: str = "proto"
    send_compression: str | None = None
    accept_compression: tuple[str, ...] | None = None
    compress_min_bytes: int = 0
    read_max_bytes: int | None = _DEFAULT_READ_MAX_BYTES
    user_agent: str = f"connect-python/{__version__}"
    get_url_max_bytes: int = 8 * 1024
    interceptors: Sequence[Interceptor] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "interceptors", tuple(self.interceptors))
        if self.protocol not in _PROTOCOLS:
            raise ValueError(
                f"unsupported protocol {self.protocol!r}: use one of {sorted(_PROTOCOLS)}"
            )
        if self.codec not in CODECS:
            raise ValueError(f"unknown codec {self.codec!r}: use one of {sorted(CODECS)}")
        if self.send_compression not in (None, _compression.IDENTITY) and (
            _compression.get(self.send_compression) is None
        ):
            raise ValueError(
                f"compression {self.send_compression!r} is not available; installed: "
                f"{', '.join(_compression.available())} (br needs connect-python[brotli], "
                "zstd needs connect-python[zstd])"
            )
        for name in self.accept_compression or ():
            if _compression.get(name) is None:
                raise ValueError(f"cannot accept compression {name!r}: it is not installed")


class _Call(Generic[ResT]):
    """One RPC in flight, after the response head: yields decoded response messages."""

    __slots__ = (
        "_closed",
        "_codec",
        "_decoder",
        "_output_type",
        "_pending",
        "_response",
        "error",
        "headers",
        "trailers",
    )

    def __init__(
        self,
        response: TransportResponse | None,
        decoder: ResponseDecoder | None,
        codec: Codec,
        output_type: type[ResT],
        headers: CIMultiDict[str],
    ) -> None:
        self._response = response
        self._decoder = decoder
        self._codec = codec
        self._output_type = output_type
        self._pending: collections.deque[bytes] = collections.deque()
        self._closed = response is None
        self.headers = headers
        self.trailers: CIMultiDict[str] = CIMultiDict()
        self.error: ConnectError | None = None

    async def receive(self) -> ResT | None:
        """The next message; ``None`` at the end (then see ``error`` and ``trailers``)."""
        pending = self._pending
        while not pending:
            if self._closed or self._response is None or self._decoder is None:
                return None
            try:
                chunk = await self._response.read()
                if chunk:
                    pending.extend(self._decoder.feed(chunk))
                    continue
                pending.extend(self._decoder.finish(self._response.trailers()))
            except BaseException:
                await self.aclose()
                raise
            self.error = _from_server(self._decoder.error, self.headers)
            self.trailers = self._decoder.trailers
            await self._release()
        try:
            return self._codec.decode(pending.popleft(), self._output_type)
        except CodecError as exc:
            await self.aclose()
            raise ConnectError(Code.INTERNAL, f"failed to decode response: {exc}") from exc

    async def _release(self) -> None:
        if not self._closed and self._response is not None:
            self._closed = True
            await self._response.close(abort=False)

    async def aclose(self) -> None:
        if not self._closed and self._response is not None:
            self._closed = True
            await self._response.close(abort=True)


class _InterceptedSource(Generic[ResT]):
    """A response stream seen through interceptors: each message goes through
    ``on_response``, and ``on_end`` runs once, at the end or when the stream is closed."""

    __slots__ = ("_call", "_chain", "_source")

    def __init__(self, source: _Call[ResT], chain: InterceptorChain, call: Call) -> None:
        self._source = source
        self._chain = chain
        self._call = call

    @property
    def headers(self) -> CIMultiDict[str]:
        return self._source.headers

    @property
    def trailers(self) -> CIMultiDict[str]:
        return self._source.trailers

    @property
    def error(self) -> ConnectError | None:
        return self._source.error

    async def receive(self) -> ResT | None:
        try:
            message = await self._source.receive()
            if message is None:
                await self._end(self._source.error)
                return None
            replaced = self._chain.response(self._call, message)
            if not isinstance(replaced, Message):
                replaced = await replaced
            return replaced  # type: ignore[return-value]
        except ConnectError as exc:
            await self._end(exc)
            raise
        except BaseException as exc:
            await self._end(_interrupted(exc))
            raise

    async def aclose(self) -> None:
        await self._source.aclose()
        await self._end(ConnectError(Code.CANCELED, "the stream was closed before its end"))

    async def _end(self, error: ConnectError | None) -> None:
        self._call.response_headers = self._source.headers
        self._call.response_trailers = self._source.trailers
        if (pending := self._chain.end(self._call, error)) is not None:
            await pending


def _interrupted(exc: BaseException) -> ConnectError:
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, Exception):
        return ConnectError(Code.INTERNAL, f"the call failed: {type(exc).__name__}")
    return ConnectError(Code.CANCELED, "the call was cancelled")


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
        self._base_url = base_url.rstrip("/")
        self._options = options = options or ClientOptions()
        if isinstance(http_client, AsyncTransport):
            self._transport: AsyncTransport = http_client
        else:
            self._transport = AiohttpTransport(http_client)
        if options.protocol == "grpc" and not self._transport.supports_trailers:
            raise ValueError(
                f"gRPC needs HTTP/2 with trailers, which {type(self._transport).__name__} "
                "cannot carry: pass connectrpc.client.HTTP2Transport() as the http_client, "
                "or use protocol='grpc-web', which works over HTTP/1.1"
            )
        accept = options.accept_compression
        if accept is None:
            accept = _compression.available()
        self._protocol: ClientProtocol = _PROTOCOLS[options.protocol](
            CODECS[options.codec], accept, options.user_agent, options.read_max_bytes
        )
        self._codec = CODECS[options.codec]
        send = options.send_compression
        self._send_compression = (
            None if send in (None, _compression.IDENTITY) else _compression.get(send)
        )
        self._chain = InterceptorChain.build(options.interceptors)
        url = urllib.parse.urlsplit(self._base_url)
        self._peer = Peer(url.hostname or "", url.port or (443 if url.scheme == "https" else 80))

    async def close(self) -> None:
        """Close the HTTP session if this client created it."""
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncConnectClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- plumbing -----------------------------------------------------------------------

    def _compression_for(self, size: int) -> _compression.Compression | None:
        if self._send_compression is None or size < self._options.compress_min_bytes:
            return None
        return self._send_compression

    def _stream_body(self, requests: StreamInput[ReqT]) -> AsyncIterator[bytes]:
        encode = self._codec.encode
        envelope = self._protocol.encode_stream_message
        compression_for = self._compression_for

        def frame(message: ReqT) -> bytes:
            data = encode(message)
            return envelope(data, compression_for(len(data)))

        return frames_from(requests, frame)

    async def _start(
        self,
        method: MethodInfo[ReqT, ResT],
        args: _StartArgs[ReqT],
    ) -> _Call[ResT]:
        """Send the request and validate the response head."""
        body, unary_message = args.body, args.unary_message
        timeout_seconds, extra_headers = args.timeout_seconds, args.extra_headers
        stream = method.stream_type is not StreamType.UNARY
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise deadline_exceeded()
        compression = None
        get_message = None
        if unary_message is not None:
            compression = self._compression_for(len(unary_message))
            if args.use_get:
                get_message, _ = self._protocol.encode_unary(unary_message, compression)
                body = None
            else:
                body, _ = self._protocol.encode_unary(unary_message, compression)
        else:
            compression = self._send_compression
        head = self._protocol.request_head(
            method.procedure,
            stream=stream,
            timeout=timeout_seconds,
            send_compression=compression,
            get_message=get_message,
        )
        if get_message is not None and len(head.path) > self._options.get_url_max_bytes:
            # Servers refuse long URLs (431, 414); the method is idempotent, so POST it.
            body = get_message
            head = self._protocol.request_head(
                method.procedure,
                stream=False,
                timeout=timeout_seconds,
                send_compression=compression,
            )
        headers = head.headers
        if extra_headers:
            headers = merge_headers(headers, to_multidict(extra_headers).items())
        request = HTTPRequest(
            head.method,
            self._base_url + head.path,
            headers,
            b"" if body is None else body,
            timeout_seconds,
        )
        response = await self._transport.send(request)
        try:
            start = self._protocol.start_response(response.status, response.headers, stream=stream)
            error = start.error
            if start.error_body:
                body_bytes = await _read_all(response, _ERROR_BODY_MAX_BYTES)
                error = self._protocol.decode_error_body(
                    response.status, response.headers, body_bytes, self._options.read_max_bytes
                )
            if error is not None:
                await response.close(abort=not start.error_body)
                call: _Call[ResT] = _Call(None, None, self._codec, method.output, start.headers)
                call.error = _from_server(error, start.headers)
                call.trailers = start.trailers or CIMultiDict()
                return call
        except BaseException:
            await response.close(abort=True)
            raise
        return _Call(response, start.decoder, self._codec, method.output, start.headers)

    def _check_get(self, method: MethodInfo[ReqT, ResT], use_get: bool) -> None:
        if use_get and self._options.protocol != "connect":
            raise ValueError(
                f"use_get needs the Connect protocol; this client speaks {self._options.protocol}"
            )
        if use_get and method.idempotency is not IdempotencyLevel.NO_SIDE_EFFECTS:
            raise ValueError(
                f"{method.procedure} cannot be called with GET: only methods marked "
                "idempotency_level = NO_SIDE_EFFECTS can"
            )

    async def _unary_output(
        self, method: MethodInfo[ReqT, ResT], start: _StartArgs[ReqT]
    ) -> UnaryOutput[ResT]:
        try:
            call = await self._start(method, start)
        except ConnectError as exc:
            return UnaryOutput(None, detached(exc), CIMultiDict(), CIMultiDict())
        try:
            message = await call.receive()
            if message is not None and call.error is None:
                extra = await call.receive()
                if extra is not None:
                    await call.aclose()
                    raise ConnectError(
                        Code.UNIMPLEMENTED,
                        f"{method.procedure} returned more than one response message",
                    )
            if call.error is None and message is None:
                raise ConnectError(
                    Code.UNIMPLEMENTED, f"{method.procedure} returned no response message"
                )
        except ConnectError as exc:
            await call.aclose()
            return UnaryOutput(None, detached(exc), call.headers, call.trailers)
        if call.error is not None:
            return UnaryOutput(None, call.error, call.headers, call.trailers)
        return UnaryOutput(message, None, call.headers, call.trailers)

    async def _stream_output(
        self, method: MethodInfo[ReqT, ResT], start: _StartArgs[ReqT]
    ) -> StreamOutput[ResT]:
        try:
            call = await self._start(method, start)
        except ConnectError as exc:
            return _failed_stream(method, self._codec, exc)
        if call.error is not None:
            return StreamOutput(call, call.error)
        return StreamOutput(call)

    # --- interceptors -----------------------------------------------------------------

    def _new_call(
        self,
        method: MethodInfo[ReqT, ResT],
        extra_headers: HeaderInput | None,
        timeout_seconds: float | None,
    ) -> Call:
        """What the interceptors see of a call this client makes."""
        return Call(
            method,
            is_client=True,
            protocol=self._options.protocol,
            peer=self._peer,
            timeout=timeout_seconds,
            request_headers=to_multidict(extra_headers),
        )

    def _intercept_requests(
        self, chain: InterceptorChain, call: Call, requests: StreamInput[ReqT]
    ) -> StreamInput[ReqT]:
        if not chain.intercepts_requests:
            return requests
        return _requests_through(chain, call, requests)

    async def _unary_through(
        self,
        chain: InterceptorChain,
        call: Call,
        method: MethodInfo[ReqT, ResT],
        start: _StartArgs[ReqT],
    ) -> UnaryOutput[ResT]:
        try:
            output = await self._unary_output(method, start)
            headers, trailers = output.response_headers(), output.response_trailers()
            error = output.error()
            if error is None and chain.intercepts_responses:
                message = output.message()
                assert message is not None
                try:
                    replaced = chain.response(call, message)
                    if not isinstance(replaced, Message):
                        replaced = await replaced
                    if replaced is not message:
                        output = UnaryOutput(replaced, None, headers, trailers)  # type: ignore[arg-type]
                except ConnectError as exc:
                    error = detached(exc)
                    output = UnaryOutput(None, error, headers, trailers)
        except BaseException as exc:
            if (pending := chain.end(call, _interrupted(exc))) is not None:
                await pending
            raise
        call.response_headers, call.response_trailers = headers, trailers
        if (pending := chain.end(call, error)) is not None:
            await pending
        return output

    async def _stream_through(
        self,
        chain: InterceptorChain,
        call: Call,
        method: MethodInfo[ReqT, ResT],
        start: _StartArgs[ReqT],
    ) -> StreamOutput[ResT]:
        try:
            source = await self._start(method, start)
        except ConnectError as exc:
            if (pending := chain.end(call, exc)) is not None:
                await pending
            return _failed_stream(method, self._codec, exc)
        except BaseException as exc:
            if (pending := chain.end(call, _interrupted(exc))) is not None:
                await pending
            raise
        if source.error is not None:
            call.response_headers, call.response_trailers = source.headers, source.trailers
            if (pending := chain.end(call, source.error)) is not None:
                await pending
            return StreamOutput(source, source.error)
        return StreamOutput(_InterceptedSource(source, chain, call))

    # --- the four RPC shapes, in "call" (no raise) form ---------------------------------

    async def _intercepted_args(
        self,
        method: MethodInfo[ReqT, ResT],
        request: ReqT | None,
        requests: StreamInput[ReqT] | None,
        extra_headers: HeaderInput | None,
        timeout_seconds: float | None,
    ) -> tuple[Call, ReqT | None, StreamInput[ReqT] | None]:
        """Run ``on_start`` and, for a single request, ``on_request``; wrap a request stream.
        A ``ConnectError`` propagates after the interceptors' ``on_end`` hooks ran."""
        chain = self._chain
        assert chain is not None
        call = self._new_call(method, extra_headers, timeout_seconds)
        if (pending := chain.start(call)) is not None:
            await pending
        try:
            if request is not None:
                seen = chain.request(call, request)
                request = seen if isinstance(seen, Message) else await seen  # type: ignore[assignment]
        except BaseException as exc:
            if (pending := chain.end(call, _interrupted(exc))) is not None:
                await pending
            raise
        if requests is not None:
            requests = self._intercept_requests(chain, call, requests)
        return call, request, requests

    def _args(
        self,
        request: ReqT | None,
        requests: StreamInput[ReqT] | None,
        extra_headers: HeaderInput | None,
        timeout_seconds: float | None,
        use_get: bool,
        *,
        enveloped: bool,
    ) -> _StartArgs[ReqT]:
        """What ``_start`` sends: a bare unary message, one enveloped message (server
        streams), or a stream of envelopes."""
        if requests is not None:
            body = self._stream_body(requests)
            return _StartArgs(body, None, extra_headers, timeout_seconds, False)
        assert request is not None
        data = self._codec.encode(request)
        if not enveloped:
            return _StartArgs(None, data, extra_headers, timeout_seconds, use_get)
        envelope = self._protocol.encode_stream_message(data, self._compression_for(len(data)))
        return _StartArgs(envelope, None, extra_headers, timeout_seconds, False)

    async def _prepare(
        self,
        method: MethodInfo[ReqT, ResT],
        request: ReqT | None,
        requests: StreamInput[ReqT] | None,
        extra_headers: HeaderInput | None,
        timeout_seconds: float | None,
        use_get: bool,
        *,
        enveloped: bool,
    ) -> tuple[Call | None, _StartArgs[ReqT]]:
        """The interceptors' ``Call`` (``None`` without interceptors) and what to send. A
        ``ConnectError`` is an interceptor ending the call (its ``on_end`` hooks have run)."""
        if self._chain is None:
            args = self._args(
                request, requests, extra_headers, timeout_seconds, use_get, enveloped=enveloped
            )
            return None, args
        call, request, requests = await self._intercepted_args(
            method, request, requests, extra_headers, timeout_seconds
        )
        args = self._args(
            request, requests, call.request_headers, timeout_seconds, use_get, enveloped=enveloped
        )
        return call, args

    async def _call_unary_response(
        self,
        method: MethodInfo[ReqT, ResT],
        request: ReqT | None,
        requests: StreamInput[ReqT] | None,
        extra_headers: HeaderInput | None,
        timeout_seconds: float | None,
        use_get: bool = False,
    ) -> UnaryOutput[ResT]:
        """A unary or client-streaming call, with the interceptors if there are any."""
        try:
            call, args = await self._prepare(
                method, request, requests, extra_headers, timeout_seconds, use_get, enveloped=False
            )
        except ConnectError as exc:
            return UnaryOutput(None, detached(exc), CIMultiDict(), CIMultiDict())
        if call is None or self._chain is None:
            return await self._unary_output(method, args)
        return await self._unary_through(self._chain, call, method, args)

    async def _call_stream_response(
        self,
        method: MethodInfo[ReqT, ResT],
        request: ReqT | None,
        requests: StreamInput[ReqT] | None,
        extra_headers: HeaderInput | None,
        timeout_seconds: float | None,
    ) -> StreamOutput[ResT]:
        """A server-streaming or bidi call, with the interceptors if there are any."""
        try:
            call, args = await self._prepare(
                method, request, requests, extra_headers, timeout_seconds, False, enveloped=True
            )
        except ConnectError as exc:
            return _failed_stream(method, self._codec, exc)
        if call is None or self._chain is None:
            return await self._stream_output(method, args)
        return await self._stream_through(self._chain, call, method, args)

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
        self._check_get(method, use_get)
        return await self._call_unary_response(
            method, request, None, extra_headers, timeout_seconds, use_get
        )

    async def call_client_stream(
        self,
        method: MethodInfo[ReqT, ResT],
        requests: StreamInput[ReqT],
        *,
        extra_headers: HeaderInput | None = None,
        timeout_seconds: float | None = None,
    ) -> UnaryOutput[ResT]:
        """Call a client-streaming method; the outcome is in the result."""
        return await self._call_unary_response(
            method, None, requests, extra_headers, timeout_seconds
        )

    async def call_server_stream(
        self,
        method: MethodInfo[ReqT, ResT],
        request: ReqT,
        *,
        extra_headers: HeaderInput | None = None,
        timeout_seconds: float | None = None,
    ) -> StreamOutput[ResT]:
        """Call a server-streaming method; iterate the result for responses."""
        return await self._call_stream_response(
            method, request, None, extra_headers, timeout_seconds
        )

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
        return await self._call_stream_response(
            method, None, requests, extra_headers, timeout_seconds
        )

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


def _failed_stream(
    method: MethodInfo[ReqT, ResT], codec: Codec, error: ConnectError
) -> StreamOutput[ResT]:
    empty: _Call[ResT] = _Call(None, None, codec, method.output, CIMultiDict())
    return StreamOutput(empty, detached(error))


async def _requests_through(
    chain: InterceptorChain, call: Call, requests: StreamInput[ReqT]
) -> AsyncIterator[ReqT]:
    """The caller's request messages, each through the interceptors' ``on_request``."""
    if isinstance(requests, AsyncIterable):
        async for message in requests:
            seen = chain.request(call, message)
            yield seen if isinstance(seen, Message) else await seen  # type: ignore[misc]
    else:
        for message in requests:
            seen = chain.request(call, message)
            yield seen if isinstance(seen, Message) else await seen  # type: ignore[misc]


async def _raise_at_end(start: Awaitable[StreamOutput[ResT]]) -> AsyncIterator[ResT]:
    """Yield a stream's messages, then raise its error if it failed."""
    output = await start
    async with output:
        async for message in output:
            yield message
    error = output.error()
    if error is not None:
        raise error


@dataclass(frozen=True)
class _StartArgs(Generic[ReqT]):
    body: bytes | AsyncIterable[bytes] | None
    unary_message: bytes | None
    extra_headers: HeaderInput | None
    timeout_seconds: float | None
    use_get: bool


def _from_server(error: ConnectError | None, headers: CIMultiDict[str]) -> ConnectError | None:
    """An error the server sent, with ``metadata`` holding the response headers followed by
    the trailers (which the protocol decoder already put there), as connect-go does: one
    place to look for everything that came with the error."""
    if error is not None and error.wire and headers:
        metadata = CIMultiDict(headers)
        metadata.extend(error.metadata)
        error.metadata = metadata
    return error


async def _read_all(response: TransportResponse, limit: int) -> bytes:
    """The body, or its first ``limit`` bytes or so if it is longer."""
    body = ChunkBuffer()
    while body.size <= limit and (chunk := await response.read()):
        body.append(chunk)
    return body.take()
