"""The ASGI 3 application that serves Connect, gRPC and gRPC-Web RPCs.

This is the IO layer of the server: it picks the protocol from the request's content type,
reads the request through ASGI ``receive``, asks that protocol (pure code behind
``ServerProtocol``) how to interpret it, runs the handler under the client's deadline and
writes the response through ``send``. Over HTTP/2 (hypercorn) a bidi handler's responses
flow while requests are still arriving; over HTTP/1.1 clients send the whole request first.
gRPC's trailers go out through the ASGI ``http.response.trailers`` extension.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from multidict import CIMultiDict

from connectrpc._aio.deadline import Deadline, IdleTimer
from connectrpc._aio.interceptors import InterceptorChain
from connectrpc._core import compression as _compression
from connectrpc._core.buffer import ChunkBuffer
from connectrpc._core.code import Code
from connectrpc._core.codec import CodecError
from connectrpc._core.envelope import MessageReader, encode_message
from connectrpc._core.error import ConnectError, detached
from connectrpc._core.interceptor import Interceptor
from connectrpc._protocol.connect import (
    ConnectServerProtocol,
    http_error_response,
)
from connectrpc._protocol.grpc import GrpcServerProtocol
from connectrpc._protocol.server import HTTPError, InvalidHeaderError, RequestPlan, ServerProtocol
from connectrpc._server.context import RequestContext
from connectrpc._server.handler import Handler
from connectrpc._server.intercept import ClientGoneError, intercept
from connectrpc._server.stream_writer import BatchingSender
from connectrpc.method import StreamType

__all__ = ["ConnectASGIApplication", "ServerOptions"]

logger = logging.getLogger("connectrpc.server")

# Loose on purpose: servers type these as TypedDict unions, which only a Mapping[str, Any]
# scope, an Any-returning receive and an Any-taking send accept.
Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


@dataclass(frozen=True)
class ServerOptions:
    """Server-wide settings.

    Attributes:
        read_max_bytes: the largest request message accepted, measured after decompression;
            larger ones fail with ``resource_exhausted``. ``None`` disables the limit.
        compressions: compressions the server accepts and may respond with; ``None`` means
            every one installed.
        compress_min_bytes: response messages smaller than this are sent uncompressed.
        read_idle_timeout: seconds a handler may wait for the next piece of the request body
            before its read fails with ``deadline_exceeded``, so a client that stalls its
            upload cannot hold a handler forever even without a deadline. ``None`` waits
            forever.
        send_idle_timeout: seconds one write of the response may block before the client is
            treated as gone and the call abandoned: a client that stops reading (or a server
            that lost the connection without telling the app) cannot keep a handler task
            alive forever. ``None`` waits forever.
        interceptors: run around every handler, the first one outermost
            (``connectrpc.interceptors``).
    """

    read_max_bytes: int | None = 4 * 1024 * 1024
    compressions: tuple[str, ...] | None = None
    compress_min_bytes: int = 1024
    read_idle_timeout: float | None = 60.0
    send_idle_timeout: float | None = 60.0
    interceptors: Sequence[Interceptor] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "interceptors", tuple(self.interceptors))


_PROTOCOL_HEADERS = frozenset(
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


# The server enforces a deadline a little after the client's own. Clients truncate
# connect-timeout-ms to whole milliseconds, so the header can be up to 1 ms short; and a
# client that notices its deadline late (a loaded machine) may read our "deadline exceeded"
# head and then give up before the body, seeing an empty error. Under servers that write the
# head and body separately (uvicorn, HTTP/3) 1 ms lost about one conformance case per run;
# 20 ms lost none in five full runs, and answering 20 ms late changes nothing for a client
# that has stopped waiting.
_DEADLINE_TRUNCATION = 0.020


def _enforced(timeout: float | None) -> float | None:
    return None if timeout is None else timeout + _DEADLINE_TRUNCATION


_ClientGoneError = ClientGoneError


def _bounded_send(send: Send, timer: IdleTimer | None) -> Send:
    """``send`` whose every call gives up after the timer's timeout with ``_ClientGoneError``."""
    if timer is None:
        return send

    async def bounded(message: Any) -> None:
        await timer.wait(send(message))

    return bounded


_DRAIN_MAX_BYTES = 8 * 1024 * 1024
_DRAIN_MAX_SECONDS = 5.0


class _DrainTimeoutError(Exception):
    """Draining ran out of time."""


class _RequestBody:
    """Wraps ASGI ``receive``: bounds the wait for each piece of the request body, and knows
    whether the body has been read to its end.

    While the body is incomplete, each receive fails with ``deadline_exceeded`` after
    ``idle_timeout`` seconds without data. Once it is complete the only event left is the
    disconnect, which may come at any time, so that wait is not bounded.

    Answering before the request body is complete is legal HTTP, but servers may close an
    HTTP/1.1 connection as soon as the response ends; the unread upload then makes the
    kernel reset the connection, and the client can lose the response it was sent. So before
    a response ends early, the rest of the body is read and discarded (``drain``), within
    bounds of size and time, and never past the call's deadline: an answer due at the
    deadline goes out on time, and the connection is left to close. HTTP/2 ends a stream
    cleanly without that (and hypercorn's HTTP/2 flow control breaks if we try), so there it
    does nothing.
    """

    __slots__ = ("_drains", "_idle", "_receive", "done", "stalled")

    def __init__(self, receive: Receive, http_version: str, idle_timeout: float | None) -> None:
        self._receive = receive
        self._drains = http_version in ("1.0", "1.1")
        self._idle = None if idle_timeout is None else IdleTimer(idle_timeout, self._idle_error)
        self.done = False
        self.stalled = False  # the client stopped sending: nothing left worth draining

    def _idle_error(self) -> ConnectError:
        assert self._idle is not None
        self.stalled = True
        return ConnectError(
            Code.DEADLINE_EXCEEDED,
            f"no request data received for {self._idle.timeout:g} s "
            "(the server's read_idle_timeout)",
        )

    def close(self) -> None:
        if self._idle is not None:
            self._idle.close()

    async def receive(self) -> Any:
        if self.done or self._idle is None:
            msg = await self._receive()
        else:
            msg = await self._idle.wait(self._receive())
        if msg["type"] != "http.request" or not msg.get("more_body", False):
            self.done = True
        return msg

    async def drain(self, time_left: float | None) -> None:
        """Discard the rest of the body, for at most ``time_left`` seconds (and the bounds)."""
        if self.done or self.stalled or not self._drains:
            return
        budget = _DRAIN_MAX_SECONDS if time_left is None else min(time_left, _DRAIN_MAX_SECONDS)
        if budget <= 0:
            return
        drained = 0
        try:
            with Deadline(budget, _DrainTimeoutError):
                while not self.done and drained <= _DRAIN_MAX_BYTES:
                    msg = await self._receive()
                    if msg["type"] != "http.request" or not msg.get("more_body", False):
                        self.done = True
                    drained += len(msg.get("body", b""))
        except _DrainTimeoutError:
            return


class _DisconnectWatch:
    """Cancels the serving task if the client disconnects once its request is complete.

    After the request body has been read, the only ASGI event left to receive is
    ``http.disconnect``; a background task waits for it so that a handler serving a client
    that went away is cancelled instead of running to completion for nobody.
    """

    __slots__ = ("_receive", "_task", "fired")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._task: asyncio.Task[None] | None = None
        self.fired = False

    def start(self) -> None:
        if self._task is None:
            target = asyncio.current_task()
            assert target is not None
            self._task = asyncio.ensure_future(self._run(target))

    async def _run(self, target: asyncio.Task[Any]) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.fired = True
        target.cancel()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def client_gone(self) -> bool:
        """Whether a ``CancelledError`` being handled came from a disconnect (and absorb it)."""
        if not self.fired:
            return False
        task = asyncio.current_task()
        if task is not None and hasattr(task, "uncancel"):
            task.uncancel()
        return True


def _decompress(plan: RequestPlan, data: bytes, limit: int | None) -> bytes:
    return _compression.decompress_message(
        plan.request_compression, data, limit, Code.INVALID_ARGUMENT
    )


def _decode(plan: RequestPlan, data: bytes, message_type: type[Message]) -> Message:
    try:
        return plan.codec.decode(data, message_type)
    except CodecError as exc:
        raise ConnectError(Code.INVALID_ARGUMENT, f"failed to decode request: {exc}") from exc


class _RequestStream(AsyncIterator[Message]):
    """The request messages of a streaming call, decoded as they arrive."""

    def __init__(
        self,
        receive: Receive,
        plan: RequestPlan,
        message_type: type[Message],
        limit: int | None,
        watch: _DisconnectWatch,
    ) -> None:
        self._receive = receive
        self._plan = plan
        self._type = message_type
        self._watch = watch
        self._reader = MessageReader(
            limit,
            plan.request_compression,
            special=0,
            malformed=Code.INVALID_ARGUMENT,
            encoding_header="a compression named in the request headers",
        )
        self._pending: collections.deque[bytes] = collections.deque()
        self.eof = False

    def __aiter__(self) -> _RequestStream:
        return self

    async def __anext__(self) -> Message:
        while not self._pending:
            if self.eof:
                incomplete = self._reader.incomplete_error()
                if incomplete is not None:
                    raise incomplete
                raise StopAsyncIteration
            msg = await self._receive()
            if msg["type"] == "http.disconnect":
                raise _ClientGoneError
            if not msg.get("more_body", False):
                self.eof = True
                self._watch.start()
            for _, data in self._reader.feed(msg.get("body", b"")):
                self._pending.append(data)
        return _decode(self._plan, self._pending.popleft(), self._type)

    async def single(self, procedure: str) -> Message:
        """The one request message of a server-streaming (or enveloped unary) call."""
        try:
            message = await self.__anext__()
        except StopAsyncIteration:
            raise ConnectError(
                Code.UNIMPLEMENTED, f"{procedure} expects one request message, got none"
            ) from None
        try:
            await self.__anext__()
        except StopAsyncIteration:
            return message
        raise ConnectError(
            Code.UNIMPLEMENTED, f"{procedure} expects one request message, got several"
        )


async def _read_body(receive: Receive, limit: int | None) -> bytes:
    body = ChunkBuffer()
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise _ClientGoneError
        body.append(msg.get("body", b""))
        if limit is not None and body.size > limit:
            raise ConnectError(
                Code.RESOURCE_EXHAUSTED,
                f"request body is larger than the configured limit of {limit} bytes",
            )
        if not msg.get("more_body", False):
            return body.take()


def _bad_header(exc: InvalidHeaderError, procedure: str) -> ConnectError:
    logger.error("%s: the handler set a response header that cannot be sent: %s", procedure, exc)
    return ConnectError(Code.INTERNAL, "internal error")


def _error_response(
    protocol: ServerProtocol,
    plan: RequestPlan,
    error: ConnectError,
    ctx: RequestContext,
    procedure: str,
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The protocol's whole error response; if the handler's headers cannot be sent, an
    ``internal`` error without them."""
    try:
        return protocol.error_response(plan, error, ctx.response_headers, ctx.response_trailers)
    except InvalidHeaderError as exc:
        bad = _bad_header(exc, procedure)
        return protocol.error_response(plan, bad, CIMultiDict(), CIMultiDict())


def _internal(exc: BaseException, procedure: str) -> ConnectError:
    logger.error("unhandled exception in %s", procedure, exc_info=exc)
    return ConnectError(Code.INTERNAL, "internal error")


_CONNECT = ConnectServerProtocol()
_PROTOCOLS: tuple[ServerProtocol, ...] = (
    _CONNECT,
    GrpcServerProtocol(web=False),
    GrpcServerProtocol(web=True),
)


class ConnectASGIApplication:
    """An ASGI 3 application serving the given handlers over Connect, gRPC and gRPC-Web.

    The protocol is chosen per request from its content type. Mount it in Starlette or
    FastAPI, or run it under hypercorn (HTTP/1.1 and HTTP/2; gRPC needs HTTP/2), uvicorn
    or another ASGI server. Requests for unknown procedures get HTTP 404 (``unimplemented``).
    """

    def __init__(
        self, handlers: Sequence[Handler], *, options: ServerOptions | None = None
    ) -> None:
        self._options = options = options or ServerOptions()
        self._handlers = tuple(handlers)
        self._routes: dict[str, Handler] = {}
        chain = InterceptorChain.build(options.interceptors)
        for handler in self._handlers:
            procedure = handler.method.procedure
            if procedure in self._routes:
                raise ValueError(f"two handlers for {procedure}")
            self._routes[procedure] = handler if chain is None else intercept(handler, chain)
        if options.compressions is None:
            self._compressions = _compression.available()
        else:
            for name in options.compressions:
                if _compression.get(name) is None:
                    raise ValueError(f"compression {name!r} is not installed")
            self._compressions = options.compressions

    @property
    def procedures(self) -> tuple[str, ...]:
        """The HTTP paths this application serves."""
        return tuple(self._routes)

    @property
    def handlers(self) -> tuple[Handler, ...]:
        """The handlers this application serves, in the order given: pass them, with
        others, to a new ``ConnectASGIApplication`` to serve several services in one app."""
        return self._handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"ConnectASGIApplication serves HTTP, not {scope['type']!r}")
        options = self._options
        body = _RequestBody(receive, scope.get("http_version", "1.1"), options.read_idle_timeout)
        send_timeout = options.send_idle_timeout
        send_timer = None if send_timeout is None else IdleTimer(send_timeout, _ClientGoneError)
        try:
            await self._serve_http(scope, body, _bounded_send(send, send_timer))
        finally:
            body.close()
            if send_timer is not None:
                send_timer.close()

    async def _serve_http(self, scope: Scope, body: _RequestBody, send: Send) -> None:
        http_version = scope.get("http_version", "1.1")
        receive = body.receive
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        handler = self._routes.get(path)
        raw_headers = scope["headers"]
        # Only the protocol's own headers are decoded up front; RequestContext decodes the
        # rest if the handler looks at them.
        protocol_headers = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in raw_headers
            if k in _PROTOCOL_HEADERS
        }
        http_method = scope["method"]
        protocol = _negotiate(http_method, protocol_headers.get("content-type", ""))
        if handler is None and (protocol is None or protocol is _CONNECT):
            await body.drain(None)
            not_found = ConnectError(Code.UNIMPLEMENTED, f"{path} is not implemented")
            await _send_simple(send, *http_error_response(HTTPError(404, not_found)))
            return
        try:
            if protocol is None:
                assert handler is not None
                stream = handler.method.stream_type is not StreamType.UNARY
                accepted = [t for p in _PROTOCOLS for t in p.content_types(stream)]
                raise HTTPError(415, headers=[("accept-post", ", ".join(accepted))])
            trailers = "http.response.trailers" in scope.get("extensions", {})
            plan = protocol.plan(
                None if handler is None else handler.method,
                http_method,
                protocol_headers,
                scope.get("query_string", b""),
                self._compressions,
                trailers,
            )
        except HTTPError as exc:
            await body.drain(None)
            await _send_simple(send, *http_error_response(exc))
            return
        client = scope.get("client")
        if handler is None:
            # gRPC answers an unknown method with a status, as for any other error.
            ctx = RequestContext(None, raw_headers, http_method, None, None)
            error = ConnectError(Code.UNIMPLEMENTED, f"{path} is not implemented")
            await body.drain(None)
            await _answer_error(protocol, plan, ctx, send, plan.error or error, path)
            return
        ctx = RequestContext(
            handler.method,
            raw_headers,
            scope["method"],
            (client[0], client[1]) if client else None,
            plan.timeout,
            scope.get("query_string", b""),
            protocol.name,
        )
        if plan.error is not None:
            await body.drain(None)
            await _answer_error(protocol, plan, ctx, send, plan.error, path)
            return
        try:
            if plan.stream:
                # A full-duplex stream may legitimately end while the client still sends.
                full_duplex = handler.method.stream_type is StreamType.BIDI_STREAM and (
                    http_version not in ("1.0", "1.1")
                )
                await self._serve_stream(
                    handler, protocol, plan, ctx, receive, send, None if full_duplex else body
                )
            else:
                await self._serve_unary(handler, plan, ctx, receive, send, body)
        except _ClientGoneError:
            return

    async def _serve_unary(
        self,
        handler: Handler,
        plan: RequestPlan,
        ctx: RequestContext,
        receive: Receive,
        send: Send,
        body: _RequestBody,
    ) -> None:
        limit = self._options.read_max_bytes
        method = handler.method
        watch = _DisconnectWatch(receive)
        error: ConnectError | None = None
        try:
            with Deadline(_enforced(plan.timeout)):
                if plan.get_message is not None:
                    data = plan.get_message
                else:
                    data = await _read_body(
                        receive,
                        _compression.buffered_limit(limit, plan.request_compression is not None),
                    )
                watch.start()
                request = _decode(plan, _decompress(plan, data, limit), method.input)
                response = await handler.fn(request, ctx)
            if not isinstance(response, method.output):
                raise TypeError(
                    f"{method.procedure} handler returned {type(response).__name__}, "
                    f"expected {method.output.__name__}"
                )
            data = plan.codec.encode(response)
            compressed = False
            comp = plan.response_compression
            if comp is not None and len(data) >= self._options.compress_min_bytes:
                data = comp.compress(data)
                compressed = True
            head = _CONNECT.unary_head(
                plan, compressed, len(data), ctx.response_headers, ctx.response_trailers
            )
        except ConnectError as exc:
            error = detached(exc)
        except asyncio.CancelledError:
            watch.stop()
            if watch.client_gone():
                return
            raise
        except _ClientGoneError:
            return
        except InvalidHeaderError as exc:
            error = _bad_header(exc, method.procedure)
        except Exception as exc:
            error = _internal(exc, method.procedure)
        watch.stop()
        if error is not None:
            await body.drain(ctx.timeout_remaining())
            await _send_simple(send, *_error_response(_CONNECT, plan, error, ctx, method.procedure))
            return
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": data})

    async def _serve_stream(
        self,
        handler: Handler,
        protocol: ServerProtocol,
        plan: RequestPlan,
        ctx: RequestContext,
        receive: Receive,
        send: Send,
        body: _RequestBody | None,
    ) -> None:
        """Serve an enveloped call (any shape under gRPC, streams under Connect); ``body`` is
        drained before the response ends, unless the call is full-duplex (then ``None``)."""
        method = handler.method
        watch = _DisconnectWatch(receive)
        requests = _RequestStream(receive, plan, method.input, self._options.read_max_bytes, watch)
        comp = plan.response_compression
        min_bytes = self._options.compress_min_bytes
        started = False

        async def start() -> ConnectError | None:
            """Send the response head once; an error if the handler's headers were invalid
            (then the head goes without them)."""
            nonlocal started
            if started:
                return None
            bad = None
            try:
                head, trailers = protocol.stream_head(plan, ctx.response_headers)
            except InvalidHeaderError as exc:
                bad = _bad_header(exc, method.procedure)
                head, trailers = protocol.stream_head(plan, CIMultiDict())
            started = True
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": head,
                    "trailers": trailers,
                }
            )
            return bad

        async def emit(message: Message) -> None:
            if not isinstance(message, method.output):
                raise TypeError(
                    f"{method.procedure} handler produced {type(message).__name__}, "
                    f"expected {method.output.__name__}"
                )
            bad = await start()
            if bad is not None:
                raise bad
            data = plan.codec.encode(message)
            frame = encode_message(data, comp if len(data) >= min_bytes else None)
            await writer.write(frame)

        writer = BatchingSender(send)
        error: ConnectError | None = None
        try:
            with Deadline(_enforced(plan.timeout)):
                kind = method.stream_type
                if kind is StreamType.UNARY:
                    request = await requests.single(method.procedure)
                    await emit(await handler.fn(request, ctx))
                elif kind is StreamType.CLIENT_STREAM:
                    await emit(await handler.fn(requests, ctx))
                else:
                    if kind is StreamType.SERVER_STREAM:
                        responses = handler.fn(await requests.single(method.procedure), ctx)
                    else:
                        responses = handler.fn(requests, ctx)
                    # Closed here, not by the garbage collector: the handler's finally
                    # blocks (and interceptors' on_end) run now, in this task.
                    async with contextlib.aclosing(responses):
                        async for response in responses:
                            await emit(response)
        except ConnectError as exc:
            error = detached(exc)
        except asyncio.CancelledError:
            writer.abort()
            watch.stop()
            if watch.client_gone():
                return
            raise
        except _ClientGoneError:
            writer.abort()
            return
        except Exception as exc:
            if writer.failed:  # the response could not be written: nobody is listening
                return
            error = _internal(exc, method.procedure)
        finally:
            watch.stop()
        if error is not None and not started and protocol.whole_error(plan):
            writer.abort()
            if body is not None:
                await body.drain(ctx.timeout_remaining())
            await _send_simple(send, *_error_response(protocol, plan, error, ctx, method.procedure))
            return
        if body is not None:
            # Take the rest of an unread upload before the head goes out, if it has not yet
            # (as the unary path does): an HTTP/1.1 client still writing when the answer
            # starts may fail its write and drop the connection with the answer half read.
            await body.drain(ctx.timeout_remaining())
        bad = await start()
        if error is None:
            error = bad
        try:
            end, http_trailers = protocol.end_stream(plan, error, ctx.response_trailers)
        except InvalidHeaderError as exc:
            bad = _bad_header(exc, method.procedure)
            end, http_trailers = protocol.end_stream(plan, bad, CIMultiDict())
        try:
            await writer.finish(end, http_trailers)
        except Exception:
            if not writer.failed:
                raise


def _negotiate(http_method: str, content_type: str) -> ServerProtocol | None:
    """The protocol that serves a request: Connect for GET (its query carries the rest),
    otherwise the one whose content types include the request's."""
    if http_method == "GET":
        return _CONNECT
    media = content_type.split(";", 1)[0].strip().lower()
    for protocol in _PROTOCOLS:
        if protocol.serves(media):
            return protocol
    return None if media else _CONNECT


async def _answer_error(
    protocol: ServerProtocol,
    plan: RequestPlan,
    ctx: RequestContext,
    send: Send,
    error: ConnectError,
    procedure: str,
) -> None:
    """Answer ``error`` before any message was sent, in the protocol's form: a whole error
    response, or a response head and an end of stream (with HTTP trailers for gRPC)."""
    if protocol.whole_error(plan):
        await _send_simple(send, *_error_response(protocol, plan, error, ctx, procedure))
        return
    try:
        head, announce = protocol.stream_head(plan, ctx.response_headers)
        end, trailers = protocol.end_stream(plan, error, ctx.response_trailers)
    except InvalidHeaderError as exc:
        bad = _bad_header(exc, procedure)
        head, announce = protocol.stream_head(plan, CIMultiDict())
        end, trailers = protocol.end_stream(plan, bad, CIMultiDict())
    await _send_simple(send, 200, head, end, trailers if announce else None)


async def _send_simple(
    send: Send,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    trailers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a whole (error) response, with HTTP trailers if given. Shielded: a cancellation
    arriving between the head and the body (a deadline racing the client going away) must
    not leave the client with a head that promises a body which never comes. ``send`` is
    bounded in time, so the shielded write cannot outlive a client that is gone."""

    async def write() -> None:
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": headers,
                    "trailers": trailers is not None,
                }
            )
            await send({"type": "http.response.body", "body": body})
            if trailers is not None:
                await send({"type": "http.response.trailers", "headers": trailers})
        except _ClientGoneError:
            pass

    await asyncio.shield(write())


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
