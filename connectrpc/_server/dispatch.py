"""The server's call logic, free of IO: what the ASGI and the WSGI applications share.

An application hands each request's head to ``Router.admit``, which picks the protocol from
the method and content type (as connect-go's handler asks each protocol whether it serves
the content type), lets that protocol plan the request, and either answers it at once (404,
415, the protocol's HTTP errors, ``unimplemented`` for gRPC, a planned RPC error) with a
``Reply`` or admits it as a ``Call``. Everything a call's response needs, the drivers build
here: the decoded request, a unary response's head and body, a stream's head, frames and end,
and the error answer in the protocol's form. The drivers only move bytes: ASGI
``receive``/``send`` with an event loop's deadlines (``asgi.py``), ``wsgi.input`` and a
response iterator with a thread's (``wsgi.py``).

Wire rules: https://connectrpc.com/docs/protocol (Connect),
https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md (gRPC) and
https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md (gRPC-Web).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from multidict import CIMultiDict

from connectrpc._aio.interceptors import InterceptorChain
from connectrpc._core import compression as _compression
from connectrpc._core.buffer import ChunkBuffer
from connectrpc._core.code import Code
from connectrpc._core.codec import CodecError
from connectrpc._core.envelope import MessageReader, encode_message
from connectrpc._core.error import ConnectError, detached
from connectrpc._protocol.connect import ConnectServerProtocol, http_error_response
from connectrpc._protocol.grpc import GrpcServerProtocol
from connectrpc._protocol.server import (
    HTTPError,
    InvalidHeaderError,
    RawHeaders,
    RequestPlan,
    ServerProtocol,
)
from connectrpc._server.context import RequestContext
from connectrpc._server.handler import Handler
from connectrpc._server.intercept import intercept
from connectrpc._server.options import ServerOptions
from connectrpc.method import MethodInfo, StreamType

__all__ = [
    "CONNECT",
    "PROTOCOL_HEADERS",
    "Call",
    "Reply",
    "RequestBody",
    "RequestMessages",
    "ResponseStream",
    "Router",
    "answer_error",
    "decode_request",
    "end_of_stream",
    "enforced",
    "error_reply",
    "failure",
    "unary_reply",
]

logger = logging.getLogger("connectrpc.server")

PROTOCOL_HEADERS = frozenset(
    {
        b"content-type",
        b"connect-protocol-version",
        b"connect-timeout-ms",
        b"content-encoding",
        b"accept-encoding",
        b"connect-content-encoding",
        b"connect-accept-encoding",
        b"grpc-timeout",
        b"grpc-encoding",
        b"grpc-accept-encoding",
    }
)

CONNECT = ConnectServerProtocol()
_PROTOCOLS: tuple[ServerProtocol, ...] = (
    CONNECT,
    GrpcServerProtocol(web=False),
    GrpcServerProtocol(web=True),
)

# The server enforces a deadline a little after the client's own. Clients truncate
# connect-timeout-ms to whole milliseconds, so the header can be up to 1 ms short; and a
# client that notices its deadline late (a loaded machine) may read our "deadline exceeded"
# head and then give up before the body, seeing an empty error. Under servers that write the
# head and body separately (uvicorn, HTTP/3) 1 ms lost about one conformance case per run;
# 20 ms lost none in five full runs, and answering 20 ms late changes nothing for a client
# that has stopped waiting.
_DEADLINE_TRUNCATION = 0.020


def enforced(timeout: float | None) -> float | None:
    """When the server gives up on a call whose client allowed ``timeout`` seconds."""
    return None if timeout is None else timeout + _DEADLINE_TRUNCATION


@dataclass(frozen=True)
class Reply:
    """A whole response: status, headers, body, and HTTP trailers when the protocol sends
    them (gRPC's, which only the ASGI app can)."""

    status: int
    headers: RawHeaders
    body: bytes
    trailers: RawHeaders | None = None


@dataclass(frozen=True)
class Call:
    """An admitted request: the handler to run, and how its protocol reads and answers it."""

    handler: Handler
    protocol: ServerProtocol
    plan: RequestPlan
    ctx: RequestContext


def _negotiate(http_method: str, content_type: str) -> ServerProtocol | None:
    """The protocol that serves a request: Connect for GET (its query carries the rest),
    otherwise the one whose content types include the request's."""
    if http_method == "GET":
        return CONNECT
    media = content_type.split(";", 1)[0].strip().lower()
    for protocol in _PROTOCOLS:
        if protocol.serves(media):
            return protocol
    return None if media else CONNECT


class Router:
    """The routing table of an application: procedure path to handler (each wrapped in the
    interceptor chain), and the compressions it accepts.

    ``sync`` is the kind of handler the application runs; ``app`` names it, for the error a
    handler of the other kind gets.
    """

    def __init__(
        self, handlers: Sequence[Handler], options: ServerOptions, *, sync: bool, app: str
    ) -> None:
        self.options = options
        self.handlers = tuple(handlers)
        self.routes: dict[str, Handler] = {}
        chain = InterceptorChain.build(options.interceptors)
        for handler in self.handlers:
            procedure = handler.method.procedure
            if handler.sync is not sync:
                other = "ConnectWSGIApplication" if handler.sync else "ConnectASGIApplication"
                raise TypeError(
                    f"{procedure} is bound with {handler.factory()}, which {app} cannot run: "
                    f"serve it with {other}, or bind it with "
                    f"{Handler(handler.method, handler.fn, sync).factory()}"
                )
            if procedure in self.routes:
                raise ValueError(f"two handlers for {procedure}")
            self.routes[procedure] = handler if chain is None else intercept(handler, chain)
        if options.compressions is None:
            self.compressions = _compression.available()
        else:
            for name in options.compressions:
                if _compression.get(name) is None:
                    raise ValueError(f"compression {name!r} is not installed")
            self.compressions = options.compressions
        self.chain = chain

    def admit(
        self,
        path: str,
        http_method: str,
        raw_headers: Iterable[tuple[bytes, bytes]],
        query_string: bytes,
        peer: tuple[str, int] | None,
        trailers: bool,
        protocol_headers: Mapping[str, str] | None = None,
    ) -> Reply | Call:
        """Answer a request head at once, or admit it as a call. ``trailers``: whether the
        server can send HTTP trailers on this request (gRPC needs them).
        ``protocol_headers``: the protocol's own headers (``PROTOCOL_HEADERS``) by
        lower-case name, when the IO layer has them at hand; else they are picked from
        ``raw_headers``."""
        handler = self.routes.get(path)
        # Only the protocol's own headers are decoded up front; RequestContext decodes the
        # rest if the handler looks at them.
        if protocol_headers is None:
            protocol_headers = {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in raw_headers
                if k in PROTOCOL_HEADERS
            }
        protocol = _negotiate(http_method, protocol_headers.get("content-type", ""))
        if handler is None and (protocol is None or protocol is CONNECT):
            not_found = ConnectError(Code.UNIMPLEMENTED, f"{path} is not implemented")
            return Reply(*http_error_response(HTTPError(404, not_found)))
        try:
            if protocol is None:
                assert handler is not None
                stream = handler.method.stream_type is not StreamType.UNARY
                accepted = [t for p in _PROTOCOLS for t in p.content_types(stream)]
                raise HTTPError(415, headers=[("accept-post", ", ".join(accepted))])
            method = None if handler is None else handler.method
            plan = protocol.plan(
                method, http_method, protocol_headers, query_string, self.compressions, trailers
            )
        except HTTPError as exc:
            return Reply(*http_error_response(exc))
        if handler is None:
            # gRPC answers an unknown method with a status, as for any other error.
            ctx = RequestContext(None, raw_headers, http_method, None, None)
            error = ConnectError(Code.UNIMPLEMENTED, f"{path} is not implemented")
            return answer_error(protocol, plan, ctx, plan.error or error, path)
        ctx = RequestContext(
            handler.method,
            raw_headers,
            http_method,
            peer,
            plan.timeout,
            query_string,
            protocol.name,
        )
        if plan.error is not None:
            return answer_error(protocol, plan, ctx, plan.error, path)
        return Call(handler, protocol, plan, ctx)


# --- errors --------------------------------------------------------------------------------


def _bad_header(exc: InvalidHeaderError, procedure: str) -> ConnectError:
    logger.error("%s: the handler set a response header that cannot be sent: %s", procedure, exc)
    return ConnectError(Code.INTERNAL, "internal error")


def _internal(exc: BaseException, procedure: str) -> ConnectError:
    logger.error("unhandled exception in %s", procedure, exc_info=exc)
    return ConnectError(Code.INTERNAL, "internal error")


def failure(exc: Exception, procedure: str) -> ConnectError:
    """What the client is told when serving ``procedure`` raised ``exc``: a ``ConnectError``
    as it is, anything else as a logged ``internal`` error (its text stays on the server)."""
    if isinstance(exc, ConnectError):
        return detached(exc)
    if isinstance(exc, InvalidHeaderError):
        return _bad_header(exc, procedure)
    return _internal(exc, procedure)


def error_reply(
    protocol: ServerProtocol,
    plan: RequestPlan,
    error: ConnectError,
    ctx: RequestContext,
    procedure: str,
) -> Reply:
    """The protocol's whole error response; if the handler's headers cannot be sent, an
    ``internal`` error without them."""
    try:
        return Reply(
            *protocol.error_response(plan, error, ctx.response_headers, ctx.response_trailers)
        )
    except InvalidHeaderError as exc:
        bad = _bad_header(exc, procedure)
        return Reply(*protocol.error_response(plan, bad, CIMultiDict(), CIMultiDict()))


def end_of_stream(call: Call, error: ConnectError | None) -> tuple[bytes, RawHeaders | None]:
    """The end of an enveloped response (last body chunk, HTTP trailers if any); without the
    handler's trailers, as an ``internal`` error, if they cannot be sent."""
    protocol, plan = call.protocol, call.plan
    try:
        return protocol.end_stream(plan, error, call.ctx.response_trailers)
    except InvalidHeaderError as exc:
        bad = _bad_header(exc, call.handler.method.procedure)
        return protocol.end_stream(plan, bad, CIMultiDict())


def answer_error(
    protocol: ServerProtocol,
    plan: RequestPlan,
    ctx: RequestContext,
    error: ConnectError,
    procedure: str,
) -> Reply:
    """Answer ``error`` before any message was sent, in the protocol's form: a whole error
    response, or a response head and an end of stream (with HTTP trailers for gRPC)."""
    if protocol.whole_error(plan):
        return error_reply(protocol, plan, error, ctx, procedure)
    try:
        head, announce = protocol.stream_head(plan, ctx.response_headers)
        end, trailers = protocol.end_stream(plan, error, ctx.response_trailers)
    except InvalidHeaderError as exc:
        bad = _bad_header(exc, procedure)
        head, announce = protocol.stream_head(plan, CIMultiDict())
        end, trailers = protocol.end_stream(plan, bad, CIMultiDict())
    return Reply(200, head, end, trailers if announce else None)


# --- requests ------------------------------------------------------------------------------


def _decode(plan: RequestPlan, data: bytes, message_type: type[Message]) -> Message:
    try:
        return plan.codec.decode(data, message_type)
    except CodecError as exc:
        raise ConnectError(Code.INVALID_ARGUMENT, f"failed to decode request: {exc}") from exc


def decode_request(
    plan: RequestPlan, data: bytes, message_type: type[Message], limit: int | None
) -> Message:
    """The message of a bare (Connect unary) request body, decompressed within ``limit``."""
    data = _compression.decompress_message(
        plan.request_compression, data, limit, Code.INVALID_ARGUMENT
    )
    return _decode(plan, data, message_type)


class RequestBody:
    """A bare request body as it arrives, bounded by ``read_max_bytes`` (leaving room for
    compression, which ``decode_request`` then checks again)."""

    __slots__ = ("_body", "_limit")

    def __init__(self, plan: RequestPlan, limit: int | None) -> None:
        self._limit = _compression.buffered_limit(limit, plan.request_compression is not None)
        self._body = ChunkBuffer()

    def append(self, chunk: bytes) -> None:
        self._body.append(chunk)
        if self._limit is not None and self._body.size > self._limit:
            raise ConnectError(
                Code.RESOURCE_EXHAUSTED,
                f"request body is larger than the configured limit of {self._limit} bytes",
            )

    def take(self) -> bytes:
        return self._body.take()


class RequestMessages:
    """The request messages of an enveloped call, decoded as the body arrives.

    ``feed`` the body's pieces; ``take`` a message, or ``None`` when more of the body is
    needed or (once ``ended``) there are no more.
    """

    __slots__ = ("_first", "_pending", "_plan", "_reader", "_type", "ended")

    def __init__(self, plan: RequestPlan, message_type: type[Message], limit: int | None) -> None:
        self._plan = plan
        self._type = message_type
        self._reader = MessageReader(
            limit,
            plan.request_compression,
            special=0,
            malformed=Code.INVALID_ARGUMENT,
            encoding_header="a compression named in the request headers",
        )
        self._pending: collections.deque[bytes] = collections.deque()
        self._first: Message | None = None
        self.ended = False

    def feed(self, data: bytes, last: bool) -> None:
        """Add a piece of the body; ``last`` when it is the final one."""
        if last:
            self.ended = True
        for _, payload in self._reader.feed(data):
            self._pending.append(payload)

    def take(self) -> Message | None:
        if self._pending:
            return _decode(self._plan, self._pending.popleft(), self._type)
        if self.ended:
            incomplete = self._reader.incomplete_error()
            if incomplete is not None:
                raise incomplete
        return None

    def single(self, procedure: str) -> Message | None:
        """The one request message of a server-streaming (or enveloped unary) call, once the
        body shows it is the only one; ``None`` while more of the body is needed."""
        if self._first is None:
            self._first = self.take()
            if self._first is None:
                if not self.ended:
                    return None
                raise ConnectError(
                    Code.UNIMPLEMENTED, f"{procedure} expects one request message, got none"
                )
        if self.take() is not None:
            raise ConnectError(
                Code.UNIMPLEMENTED, f"{procedure} expects one request message, got several"
            )
        return self._first if self.ended else None


# --- responses -----------------------------------------------------------------------------


def _check_type(method: MethodInfo[Any, Any], message: object, verb: str) -> None:
    if not isinstance(message, method.output):
        raise TypeError(
            f"{method.procedure} handler {verb} {type(message).__name__}, "
            f"expected {method.output.__name__}"
        )


def unary_reply(call: Call, response: object, compress_min_bytes: int) -> Reply:
    """A successful Connect unary response: the message encoded, compressed when it is
    large enough and the client accepts a compression, after the handler's headers."""
    plan, ctx = call.plan, call.ctx
    _check_type(call.handler.method, response, "returned")
    assert isinstance(response, Message)
    data = plan.codec.encode(response)
    compressed = False
    comp = plan.response_compression
    if comp is not None and len(data) >= compress_min_bytes:
        data = comp.compress(data)
        compressed = True
    head = CONNECT.unary_head(
        plan, compressed, len(data), ctx.response_headers, ctx.response_trailers
    )
    return Reply(200, head, data)


class ResponseStream:
    """The response of an enveloped call: its head (sent once, before the first message or
    at the end), one frame per message, and the end of stream with the call's outcome.

    If the handler's headers cannot be sent, the head goes without them and the call ends
    with an ``internal`` error (``bad``).
    """

    __slots__ = ("_call", "_min_bytes", "bad", "started")

    def __init__(self, call: Call, compress_min_bytes: int) -> None:
        self._call = call
        self._min_bytes = compress_min_bytes
        self.started = False
        self.bad: ConnectError | None = None

    def head(self) -> tuple[RawHeaders, bool] | None:
        """The response headers and whether HTTP trailers follow; ``None`` once sent."""
        if self.started:
            return None
        call = self._call
        try:
            head = call.protocol.stream_head(call.plan, call.ctx.response_headers)
        except InvalidHeaderError as exc:
            self.bad = _bad_header(exc, call.handler.method.procedure)
            head = call.protocol.stream_head(call.plan, CIMultiDict())
        self.started = True
        return head

    def check(self, message: object) -> None:
        """Fail with ``TypeError`` if the handler produced the wrong message type."""
        _check_type(self._call.handler.method, message, "produced")

    def frame(self, message: Message) -> bytes:
        """One response message, enveloped (compressed if large enough)."""
        plan = self._call.plan
        data = plan.codec.encode(message)
        comp = plan.response_compression
        return encode_message(data, comp if len(data) >= self._min_bytes else None)

    def end(self, error: ConnectError | None) -> tuple[bytes, RawHeaders | None]:
        """The last body chunk, and the HTTP trailers if the protocol sends them."""
        return end_of_stream(self._call, error or self.bad)

    def whole_error(self, error: ConnectError | None) -> bool:
        """Whether ``error`` is answered as a whole error response (nothing sent yet, and the
        protocol answers so)."""
        call = self._call
        return error is not None and not self.started and call.protocol.whole_error(call.plan)

    def error_reply(self, error: ConnectError) -> Reply:
        call = self._call
        return error_reply(call.protocol, call.plan, error, call.ctx, call.handler.method.procedure)
