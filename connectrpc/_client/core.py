"""The client's call logic, shared by the async and the sync client and free of IO.

Every call is a *flow*: a generator that yields the IO it needs as small operations and is
sent their results, the way httpx drives its auth flows from both of its clients:

- ``(SEND, request)``: send an ``HTTPRequest``; the result is the transport's response;
- ``(READ, response)``: the next body chunk (``b""`` at the end);
- ``(CLOSE, response, abort)``: release the response's connection;
- ``(WAIT, awaitable)``: an interceptor hook written as ``async def``; only the async
  client can wait for it.

An exception the IO raises is thrown into the flow at the ``yield`` that asked for it. One
driver, ``run``, performs the operations for both clients: the async client awaits it
(``_client/async_client.py``); the sync client (``_client/sync_client.py``) passes blocking
results wrapped in awaitables that never suspend, so ``run_blocking`` completes the same
coroutine in one step, with no event loop. Everything else lives here once: the request head and body per protocol, deadlines and GET, the response
head and error bodies, message decoding and its limits, the rules for unary results (exactly
one message), and the interceptors' hooks at the start, on each message and at the end.
"""

from __future__ import annotations

import collections
import functools
import inspect
import urllib.parse
from collections.abc import (
    AsyncIterable,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, Generic, NoReturn, TypedDict, TypeVar

from google.protobuf.message import Message
from multidict import CIMultiDict

from connectrpc._aio.interceptors import InterceptorChain
from connectrpc._core import compression as _compression
from connectrpc._core.awaitables import Ready, run_now
from connectrpc._core.buffer import ChunkBuffer
from connectrpc._core.code import Code
from connectrpc._core.codec import CODECS, Codec, CodecError
from connectrpc._core.error import ConnectError, canceled, detached
from connectrpc._core.headers import HeaderInput, to_multidict
from connectrpc._core.interceptor import Call, Interceptor, Peer
from connectrpc._protocol.client import ClientProtocol, ResponseDecoder
from connectrpc._protocol.connect import ConnectClientProtocol, merge_headers
from connectrpc._protocol.grpc import GrpcClientProtocol
from connectrpc._transports.base import HTTPRequest
from connectrpc._transports.cancel import CancelToken
from connectrpc._version import __version__
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.unary import UnaryOutput

__all__ = [
    "ASYNC_HOOK",
    "CallOptions",
    "CallState",
    "ClientCore",
    "ClientOptions",
    "Flow",
    "ResponseSource",
    "SourceBase",
    "SyncCallOptions",
    "SyncUnaryCallOptions",
    "UnaryCallOptions",
    "ready_async",
    "refuse_awaitable",
    "run",
    "run_blocking",
]

T = TypeVar("T")
ReqT = TypeVar("ReqT", bound=Message)
ResT = TypeVar("ResT", bound=Message)

SEND = 0
READ = 1
CLOSE = 2
WAIT = 3

Op = tuple[Any, ...]
Flow = Generator[Op, Any, T]

_DEFAULT_READ_MAX_BYTES = 64 * 1024 * 1024
_ERROR_BODY_MAX_BYTES = 4 * 1024 * 1024

_PROTOCOLS: dict[str, Callable[[Codec, tuple[str, ...], str, int | None], ClientProtocol]] = {
    "connect": ConnectClientProtocol,
    "grpc-web": functools.partial(GrpcClientProtocol, web=True),
    "grpc": functools.partial(GrpcClientProtocol, web=False),
}


def _advance(flow: Flow[T], value: Any, error: BaseException | None) -> tuple[bool, Any]:
    """Resume ``flow`` with an operation's result (or its exception): ``(False, next_op)``,
    or ``(True, result)`` once the flow has returned."""
    try:
        return False, (flow.send(value) if error is None else flow.throw(error))
    except StopIteration as stop:
        return True, stop.value


def _perform(op: Op, send: Callable[[HTTPRequest], Any]) -> Any:
    """Start one operation: for an async transport this returns an awaitable, for a sync
    one the operation's result (both kinds of transport name their methods alike)."""
    kind = op[0]
    if kind == READ:
        return op[1].read()
    if kind == SEND:
        return send(op[1])
    if kind == CLOSE:
        return op[1].close(abort=op[2])
    return op[1]


async def run(flow: Flow[T], send: Callable[[HTTPRequest], Any], settle: Settle) -> T:
    """Drive ``flow`` to its result: perform each operation through the transport's
    ``send`` (and its responses' ``read``/``close``), and resume the flow with what
    ``settle`` makes of it.

    This is the one driver of both clients. The async client passes ``settle=ready_async``
    (the operation's awaitable as is) and awaits this coroutine. The sync client passes
    ``settle=ready_sync``, which wraps each result in an awaitable that never suspends, so
    this coroutine never suspends either and ``run_blocking`` finishes it with one
    ``send(None)``, without an event loop.
    """
    done, out = _advance(flow, None, None)
    while not done:
        try:
            value = await settle(out[0], _perform(out, send))
        except BaseException as exc:
            done, out = _advance(flow, None, exc)
            continue
        done, out = _advance(flow, value, None)
    return out  # type: ignore[no-any-return]


Settle = Callable[[int, Any], Awaitable[Any]]
"""Turns what ``_perform`` started (its kind, and an awaitable or a result) into an
awaitable of the operation's result."""


def ready_async(kind: int, started: Awaitable[Any]) -> Awaitable[Any]:
    return started


def ready_sync(kind: int, result: Any) -> Awaitable[Any]:
    if kind == WAIT:
        refuse_awaitable(result)
    return Ready(result)


def run_blocking(flow: Flow[T], send: Callable[[HTTPRequest], Any]) -> T:
    """``run`` for a sync transport, in the calling thread."""
    return run_now(run(flow, send, ready_sync), "a blocking flow suspended")


ASYNC_HOOK = (
    "the sync client runs interceptors in the calling thread, where there is nothing to "
    "await: make the hook a plain function"
)


def refuse_awaitable(value: object) -> NoReturn:
    """What the sync client does with an interceptor hook's awaitable."""
    if inspect.iscoroutine(value):
        value.close()
    raise TypeError(ASYNC_HOOK)


def _resolved(value: T | Any) -> Flow[T]:
    """An interceptor hook's result: as is, or waited for when the hook was async."""
    if value is None or isinstance(value, Message):
        return value  # type: ignore[return-value]
    return (yield (WAIT, value))  # type: ignore[no-any-return]


class CallOptions(TypedDict, total=False):
    """What every call takes besides its method and request(s).

    Attributes:
        extra_headers: request headers to add (a dict, any multidict, or pairs).
        timeout_seconds: the call's deadline, sent to the server and enforced locally.
    """

    extra_headers: HeaderInput | None
    timeout_seconds: float | None


_OPTION_NAMES = frozenset({"extra_headers", "timeout_seconds", "use_get", "cancel"})


class UnaryCallOptions(CallOptions, total=False):
    """A unary call's options: also ``use_get``, to send a side-effect-free call as GET."""

    use_get: bool


class SyncCallOptions(CallOptions, total=False):
    """A blocking call's options: also ``cancel``, a ``CancelToken`` that aborts the call
    from another thread."""

    cancel: CancelToken | None


class SyncUnaryCallOptions(SyncCallOptions, total=False):
    """A blocking unary call's options: ``use_get`` too."""

    use_get: bool


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
            (``connectrpc.interceptors``). The sync client runs plain hooks only.
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


class CallState(Generic[ResT]):
    """One RPC after its response head: the body's decoder, decoded messages not yet taken,
    and, once the body has ended, the status (``error``) and ``trailers``."""

    __slots__ = (
        "_closed",
        "_codec",
        "_decoder",
        "_output_type",
        "_pending",
        "error",
        "headers",
        "response",
        "trailers",
    )

    def __init__(
        self,
        response: Any,
        decoder: ResponseDecoder | None,
        codec: Codec,
        output_type: type[ResT],
        headers: CIMultiDict[str],
    ) -> None:
        self.response = response
        self._decoder = decoder
        self._codec = codec
        self._output_type = output_type
        self._pending: collections.deque[bytes] = collections.deque()
        self._closed = response is None
        self.headers = headers
        self.trailers: CIMultiDict[str] = CIMultiDict()
        self.error: ConnectError | None = None

    def ready_message(self) -> ResT | None:
        """The next message if it has arrived already, decoded with no IO (the common case
        in a stream of small messages: one read brings many); ``None`` when getting it takes
        IO, or when it does not decode (then ``next_message`` reports that)."""
        pending = self._pending
        if not pending:
            return None
        try:
            message = self._codec.decode(pending[0], self._output_type)
        except CodecError:
            return None
        pending.popleft()
        return message

    def next_message(self) -> Flow[ResT | None]:
        """The next message; ``None`` at the end (then see ``error`` and ``trailers``)."""
        pending = self._pending
        while not pending:
            response, decoder = self.response, self._decoder
            if self._closed or decoder is None:
                return None
            try:
                chunk = yield (READ, response)
                if chunk:
                    pending.extend(decoder.feed(chunk))
                    continue
                pending.extend(decoder.finish(response.trailers()))
            except BaseException:
                yield from self.close(abort=True)
                raise
            self.error = _from_server(decoder.error, self.headers)
            self.trailers = decoder.trailers
            yield from self.close(abort=False)
        try:
            return self._codec.decode(pending.popleft(), self._output_type)
        except CodecError as exc:
            yield from self.close(abort=True)
            raise ConnectError(Code.INTERNAL, f"failed to decode response: {exc}") from exc

    def close(self, *, abort: bool = True) -> Flow[None]:
        """Release the connection (``abort``: the body was not read to its end)."""
        if not self._closed:
            self._closed = True
            yield (CLOSE, self.response, abort)

    def stop(self) -> Flow[None]:
        """The caller stopped reading before the end."""
        return self.close(abort=True)


class _Delegate(Generic[ResT]):
    """Shows the headers, trailers and status of the call it wraps (``_source``)."""

    __slots__ = ("_source",)

    def __init__(self, source: CallState[ResT] | _InterceptedState[ResT]) -> None:
        self._source = source

    @property
    def response(self) -> Any:
        return self._source.response

    @property
    def headers(self) -> CIMultiDict[str]:
        return self._source.headers

    @property
    def trailers(self) -> CIMultiDict[str]:
        return self._source.trailers

    @property
    def error(self) -> ConnectError | None:
        return self._source.error


class _InterceptedState(_Delegate[ResT]):
    """A response stream seen through interceptors: each message goes through
    ``on_response``, and ``on_end`` runs once, at the end or when the stream is closed."""

    __slots__ = ("_call", "_chain")

    _source: CallState[ResT]

    def __init__(self, source: CallState[ResT], chain: InterceptorChain, call: Call) -> None:
        super().__init__(source)
        self._chain = chain
        self._call = call

    def ready_message(self) -> ResT | None:
        return None  # every message goes through the flow, and the interceptors

    def next_message(self) -> Flow[ResT | None]:
        try:
            message = yield from self._source.next_message()
            if message is None:
                yield from self._end(self._source.error)
                return None
            return (yield from _resolved(self._chain.response(self._call, message)))
        except BaseException as exc:
            yield from self._source.stop()
            yield from self._end(_interrupted(exc))
            raise

    def stop(self) -> Flow[None]:
        yield from self._source.stop()
        yield from self._end(ConnectError(Code.CANCELED, "the stream was closed before its end"))

    def _end(self, error: ConnectError | None) -> Flow[None]:
        self._call.response_headers = self._source.headers
        self._call.response_trailers = self._source.trailers
        yield from _resolved(self._chain.end(self._call, error))


ResponseSource = CallState[ResT] | _InterceptedState[ResT]
"""What a response stream reads from: the call itself, or the call through interceptors."""


class SourceBase(_Delegate[ResT]):
    """What the stream outputs of both clients read from: a response source and the
    transport whose IO its flows need; each client adds receive and close."""

    __slots__ = ("_transport",)

    def __init__(self, source: ResponseSource[ResT], transport: Any) -> None:
        super().__init__(source)
        self._transport = transport


def _interrupted(exc: BaseException) -> ConnectError:
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, Exception):
        return ConnectError(Code.INTERNAL, f"the call failed: {type(exc).__name__}")
    return canceled()


@dataclass(frozen=True)
class _Send:
    """What a call sends: a stream of envelopes or one enveloped message (``body``), or a
    bare unary message (``unary_message``), with the caller's headers and deadline."""

    body: bytes | AsyncIterable[bytes] | Iterable[bytes] | None
    unary_message: bytes | None
    extra_headers: HeaderInput | None
    timeout_seconds: float | None
    use_get: bool
    cancel: CancelToken | None


class ClientCore:
    """Everything a client knows about its server and protocol, and the call flows.

    ``frames`` turns the caller's request messages into body chunks: an async iterable for
    the async client, a plain one for the sync client; ``on_request`` is the interceptors'
    per-message hook, or ``None``.
    """

    def __init__(
        self,
        base_url: str,
        options: ClientOptions | None,
        *,
        transport_name: str,
        supports_trailers: bool,
        frames: Callable[[Any, Callable[[Any], bytes], Callable[[Any], Any] | None], Any],
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._options = options = options or ClientOptions()
        if options.protocol == "grpc" and not supports_trailers:
            raise ValueError(
                f"gRPC needs HTTP/2 with trailers, which {transport_name} cannot carry: "
                "pass connectrpc.client.HTTP2Transport() (async client) or "
                "SyncHTTP2Transport() (sync client) as the http_client, or use "
                "protocol='grpc-web', which works over HTTP/1.1"
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
        self._frames = frames
        url = urllib.parse.urlsplit(self._base_url)
        self._peer = Peer(url.hostname or "", url.port or (443 if url.scheme == "https" else 80))

    def refuse_async_hooks(self, why: str) -> None:
        """For the sync client: ``TypeError`` if an interceptor hook is ``async def``."""
        if self._chain is not None:
            self._chain.refuse_async_hooks(why)

    # --- what to send -------------------------------------------------------------------

    def _compression_for(self, size: int) -> _compression.Compression | None:
        if self._send_compression is None or size < self._options.compress_min_bytes:
            return None
        return self._send_compression

    def _frame(self, message: Message) -> bytes:
        data = self._codec.encode(message)
        return self._protocol.encode_stream_message(data, self._compression_for(len(data)))

    def _check_get(self, method: MethodInfo[ReqT, ResT], use_get: bool) -> None:
        """Refuse ``use_get`` where GET cannot be used (a usage error, not an RPC one)."""
        if use_get and self._options.protocol != "connect":
            raise ValueError(
                f"use_get needs the Connect protocol; this client speaks {self._options.protocol}"
            )
        if use_get and method.idempotency is not IdempotencyLevel.NO_SIDE_EFFECTS:
            raise ValueError(
                f"{method.procedure} cannot be called with GET: only methods marked "
                "idempotency_level = NO_SIDE_EFFECTS can"
            )

    def _what_to_send(
        self,
        request: Message | None,
        requests: Any,
        call: Call | None,
        options: Mapping[str, Any],
        *,
        enveloped: bool,
    ) -> _Send:
        # The interceptors' Call holds the headers to send: on_start may have changed them.
        headers = options.get("extra_headers") if call is None else call.request_headers
        timeout, cancel = options.get("timeout_seconds"), options.get("cancel")
        if requests is not None:
            on_request = None
            if call is not None and self._chain is not None and self._chain.intercepts_requests:
                on_request = functools.partial(self._chain.request, call)
            body = self._frames(requests, self._frame, on_request)
            return _Send(body, None, headers, timeout, False, cancel)
        assert request is not None
        if not enveloped:
            data = self._codec.encode(request)
            return _Send(None, data, headers, timeout, options.get("use_get", False), cancel)
        return _Send(self._frame(request), None, headers, timeout, False, cancel)

    def _http_request(self, method: MethodInfo[Any, Any], send: _Send) -> HTTPRequest:
        body, unary_message, timeout = send.body, send.unary_message, send.timeout_seconds
        if timeout is not None and timeout <= 0:
            raise ConnectError(Code.DEADLINE_EXCEEDED, "the RPC deadline was exceeded")
        protocol = self._protocol
        compression = self._send_compression
        get_message = None
        if unary_message is not None:
            compression = self._compression_for(len(unary_message))
            encoded, _ = protocol.encode_unary(unary_message, compression)
            if send.use_get:
                get_message = encoded
            else:
                body = encoded
        stream = method.stream_type is not StreamType.UNARY
        head = protocol.request_head(
            method.procedure,
            stream=stream,
            timeout=timeout,
            send_compression=compression,
            get_message=get_message,
        )
        if get_message is not None and len(head.path) > self._options.get_url_max_bytes:
            # Servers refuse long URLs (431, 414); the method is idempotent, so POST it.
            body = get_message
            head = protocol.request_head(
                method.procedure, stream=False, timeout=timeout, send_compression=compression
            )
        headers = head.headers
        if send.extra_headers:
            headers = merge_headers(headers, to_multidict(send.extra_headers).items())
        return HTTPRequest(
            head.method,
            self._base_url + head.path,
            headers,
            b"" if body is None else body,
            timeout,
            send.cancel,
        )

    # --- the call -----------------------------------------------------------------------

    def _start(self, method: MethodInfo[Any, ResT], send: _Send) -> Flow[CallState[ResT]]:
        """Send the request and validate the response head."""
        stream = method.stream_type is not StreamType.UNARY
        response = yield (SEND, self._http_request(method, send))
        protocol = self._protocol
        try:
            start = protocol.start_response(response.status, response.headers, stream=stream)
            error = start.error
            if start.error_body:
                body = ChunkBuffer()
                while body.size <= _ERROR_BODY_MAX_BYTES and (chunk := (yield (READ, response))):
                    body.append(chunk)
                error = protocol.decode_error_body(
                    response.status, response.headers, body.take(), self._options.read_max_bytes
                )
            if error is not None:
                yield (CLOSE, response, not start.error_body)
                call: CallState[ResT] = CallState(
                    None, None, self._codec, method.output, start.headers
                )
                call.error = _from_server(error, start.headers)
                call.trailers = start.trailers or CIMultiDict()
                return call
        except BaseException:
            yield (CLOSE, response, True)
            raise
        return CallState(response, start.decoder, self._codec, method.output, start.headers)

    def _unary_output(self, method: MethodInfo[Any, ResT], send: _Send) -> Flow[UnaryOutput[ResT]]:
        try:
            call = yield from self._start(method, send)
        except ConnectError as exc:
            return UnaryOutput(None, detached(exc), CIMultiDict(), CIMultiDict())
        try:
            message = yield from call.next_message()
            if (
                message is not None
                and call.error is None
                and (yield from call.next_message()) is not None
            ):
                raise ConnectError(
                    Code.UNIMPLEMENTED,
                    f"{method.procedure} returned more than one response message",
                )
            if call.error is None and message is None:
                raise ConnectError(
                    Code.UNIMPLEMENTED, f"{method.procedure} returned no response message"
                )
        except ConnectError as exc:
            yield from call.stop()
            return UnaryOutput(None, detached(exc), call.headers, call.trailers)
        if call.error is not None:
            return UnaryOutput(None, call.error, call.headers, call.trailers)
        return UnaryOutput(message, None, call.headers, call.trailers)

    def _prepare(
        self,
        method: MethodInfo[Any, Any],
        request: Message | None,
        requests: Any,
        options: Mapping[str, Any],
        *,
        enveloped: bool,
    ) -> Flow[tuple[Call | None, _Send]]:
        """Without interceptors, what to send. With them, the ``Call`` they see too, after
        ``on_start`` and (for a single request) ``on_request``; a ``ConnectError`` is an
        interceptor ending the call, after the ``on_end`` hooks ran."""
        if not _OPTION_NAMES.issuperset(options):
            unknown = ", ".join(sorted(set(options) - _OPTION_NAMES))
            raise TypeError(f"unexpected call options: {unknown} (see {CallOptions.__name__})")
        chain = self._chain
        if chain is None:
            return None, self._what_to_send(request, requests, None, options, enveloped=enveloped)
        call = Call(
            method,
            is_client=True,
            protocol=self._options.protocol,
            peer=self._peer,
            timeout=options.get("timeout_seconds"),
            request_headers=to_multidict(options.get("extra_headers")),
        )
        yield from _resolved(chain.start(call))
        try:
            if request is not None:
                request = yield from _resolved(chain.request(call, request))
        except BaseException as exc:
            yield from _resolved(chain.end(call, _interrupted(exc)))
            raise
        return call, self._what_to_send(request, requests, call, options, enveloped=enveloped)

    def unary_flow(
        self,
        method: MethodInfo[Any, ResT],
        request: Message | None,
        requests: Any,
        options: Mapping[str, Any],
    ) -> Flow[UnaryOutput[ResT]]:
        """A unary or client-streaming call, with the interceptors if there are any;
        ``options`` are the caller's (``UnaryCallOptions``, ``SyncUnaryCallOptions``)."""
        self._check_get(method, options.get("use_get", False))
        try:
            call, send = yield from self._prepare(
                method, request, requests, options, enveloped=False
            )
        except ConnectError as exc:
            return UnaryOutput(None, detached(exc), CIMultiDict(), CIMultiDict())
        chain = self._chain
        if call is None or chain is None:
            return (yield from self._unary_output(method, send))
        try:
            output = yield from self._unary_output(method, send)
            headers, trailers = output.response_headers(), output.response_trailers()
            error = output.error()
            if error is None and chain.intercepts_responses:
                message = output.message()
                assert message is not None
                try:
                    replaced: ResT = yield from _resolved(chain.response(call, message))
                    if replaced is not message:
                        output = UnaryOutput(replaced, None, headers, trailers)
                except ConnectError as exc:
                    error = detached(exc)
                    output = UnaryOutput(None, error, headers, trailers)
        except BaseException as exc:
            yield from _resolved(chain.end(call, _interrupted(exc)))
            raise
        call.response_headers, call.response_trailers = headers, trailers
        yield from _resolved(chain.end(call, error))
        return output

    def stream_flow(
        self,
        method: MethodInfo[Any, ResT],
        request: Message | None,
        requests: Any,
        options: Mapping[str, Any],
    ) -> Flow[tuple[ResponseSource[ResT], ConnectError | None]]:
        """A server-streaming or bidi call, with the interceptors if there are any: where to
        read the responses from, and the error if the call failed before its first one."""
        empty: CallState[ResT] = CallState(None, None, self._codec, method.output, CIMultiDict())
        try:
            call, send = yield from self._prepare(
                method, request, requests, options, enveloped=True
            )
        except ConnectError as exc:
            return empty, detached(exc)
        chain = self._chain
        try:
            source = yield from self._start(method, send)
        except ConnectError as exc:
            if call is not None and chain is not None:
                yield from _resolved(chain.end(call, exc))
            return empty, detached(exc)
        except BaseException as exc:
            if call is not None and chain is not None:
                yield from _resolved(chain.end(call, _interrupted(exc)))
            raise
        if call is None or chain is None:
            return source, source.error
        if source.error is not None:
            call.response_headers, call.response_trailers = source.headers, source.trailers
            yield from _resolved(chain.end(call, source.error))
            return source, source.error
        return _InterceptedState(source, chain, call), None


def _from_server(error: ConnectError | None, headers: CIMultiDict[str]) -> ConnectError | None:
    """An error the server sent, with ``metadata`` holding the response headers followed by
    the trailers (which the protocol decoder already put there), as connect-go does: one
    place to look for everything that came with the error."""
    if error is not None and error.wire and headers:
        metadata = CIMultiDict(headers)
        metadata.extend(error.metadata)
        error.metadata = metadata
    return error
