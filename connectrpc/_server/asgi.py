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
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from google.protobuf.message import Message

from connectrpc._aio.deadline import Deadline, IdleTimer
from connectrpc._core.code import Code
from connectrpc._core.error import ConnectError
from connectrpc._protocol.server import RequestPlan
from connectrpc._server.context import RequestContext
from connectrpc._server.dispatch import (
    Call,
    Reply,
    RequestBody,
    RequestMessages,
    ResponseStream,
    Router,
    decode_request,
    enforced,
    error_reply,
    failure,
    unary_reply,
)
from connectrpc._server.handler import Handler
from connectrpc._server.intercept import ClientGoneError
from connectrpc._server.options import ServerOptions
from connectrpc._server.stream_writer import BatchingSender
from connectrpc.method import StreamType

__all__ = ["ConnectASGIApplication", "ServerOptions"]

# Loose on purpose: servers type these as TypedDict unions, which only a Mapping[str, Any]
# scope, an Any-returning receive and an Any-taking send accept.
Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


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

    def client_gone(self, ctx: RequestContext) -> bool:
        """Whether a ``CancelledError`` being handled came from a disconnect (then absorb it,
        and mark the call cancelled). Stops the watch."""
        self.stop()
        if not self.fired:
            return False
        ctx._cancel()
        task = asyncio.current_task()
        if task is not None and hasattr(task, "uncancel"):
            task.uncancel()
        return True


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
        self._watch = watch
        self._messages = RequestMessages(plan, message_type, limit)

    def __aiter__(self) -> _RequestStream:
        return self

    async def _more(self) -> None:
        msg = await self._receive()
        if msg["type"] == "http.disconnect":
            raise _ClientGoneError
        last = not msg.get("more_body", False)
        if last:
            self._watch.start()
        self._messages.feed(msg.get("body", b""), last)

    async def __anext__(self) -> Message:
        while (message := self._messages.take()) is None:
            if self._messages.ended:
                raise StopAsyncIteration
            await self._more()
        return message

    async def single(self, procedure: str) -> Message:
        """The one request message of a server-streaming (or enveloped unary) call."""
        while (message := self._messages.single(procedure)) is None:
            await self._more()
        return message


async def _read_body(receive: Receive, body: RequestBody) -> bytes:
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise _ClientGoneError
        body.append(msg.get("body", b""))
        if not msg.get("more_body", False):
            return body.take()


class ConnectASGIApplication:
    """An ASGI 3 application serving the given handlers over Connect, gRPC and gRPC-Web.

    The protocol is chosen per request from its content type. Mount it in Starlette or
    FastAPI, or run it under hypercorn (HTTP/1.1 and HTTP/2; gRPC needs HTTP/2), uvicorn
    or another ASGI server. Requests for unknown procedures get HTTP 404 (``unimplemented``).
    Handlers are ``async def`` (``unary_handler`` ...); for plain functions under a WSGI
    server, see ``ConnectWSGIApplication``.
    """

    def __init__(
        self, handlers: Sequence[Handler], *, options: ServerOptions | None = None
    ) -> None:
        self._options = options = options or ServerOptions()
        self._router = Router(handlers, options, sync=False, app="ConnectASGIApplication")

    @property
    def procedures(self) -> tuple[str, ...]:
        """The HTTP paths this application serves."""
        return tuple(self._router.routes)

    @property
    def handlers(self) -> tuple[Handler, ...]:
        """The handlers this application serves, in the order given: pass them, with
        others, to a new ``ConnectASGIApplication`` to serve several services in one app."""
        return self._router.handlers

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
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        client = scope.get("client")
        admitted = self._router.admit(
            path,
            scope["method"],
            scope["headers"],
            scope.get("query_string", b""),
            (client[0], client[1]) if client else None,
            "http.response.trailers" in scope.get("extensions", {}),
        )
        if isinstance(admitted, Reply):
            await body.drain(None)
            await _send_simple(send, admitted)
            return
        try:
            if admitted.plan.stream:
                # A full-duplex stream may legitimately end while the client still sends.
                full_duplex = admitted.handler.method.stream_type is StreamType.BIDI_STREAM and (
                    scope.get("http_version", "1.1") not in ("1.0", "1.1")
                )
                await self._serve_stream(
                    admitted, body.receive, send, None if full_duplex else body
                )
            else:
                await self._serve_unary(admitted, body.receive, send, body)
        except _ClientGoneError:
            return

    async def _serve_unary(
        self, call: Call, receive: Receive, send: Send, body: _RequestBody
    ) -> None:
        plan, ctx, handler = call.plan, call.ctx, call.handler
        limit = self._options.read_max_bytes
        watch = _DisconnectWatch(receive)
        error: ConnectError | None = None
        try:
            with Deadline(enforced(plan.timeout)):
                if plan.get_message is not None:
                    data = plan.get_message
                else:
                    data = await _read_body(receive, RequestBody(plan, limit))
                watch.start()
                request = decode_request(plan, data, handler.method.input, limit)
                response = await handler.fn(request, ctx)
            reply = unary_reply(call, response, self._options.compress_min_bytes)
        except asyncio.CancelledError:
            if watch.client_gone(ctx):
                return
            raise
        except _ClientGoneError:
            ctx._cancel()
            return
        except Exception as exc:
            error = failure(exc, handler.method.procedure)
        watch.stop()
        if error is not None:
            await body.drain(ctx.timeout_remaining())
            await _send_simple(
                send, error_reply(call.protocol, plan, error, ctx, handler.method.procedure)
            )
            return
        await send({"type": "http.response.start", "status": 200, "headers": reply.headers})
        await send({"type": "http.response.body", "body": reply.body})

    async def _serve_stream(
        self, call: Call, receive: Receive, send: Send, body: _RequestBody | None
    ) -> None:
        """Serve an enveloped call (any shape under gRPC, streams under Connect); ``body`` is
        drained before the response ends, unless the call is full-duplex (then ``None``)."""
        plan, ctx, handler = call.plan, call.ctx, call.handler
        method = handler.method
        watch = _DisconnectWatch(receive)
        requests = _RequestStream(receive, plan, method.input, self._options.read_max_bytes, watch)
        out = ResponseStream(call, self._options.compress_min_bytes)
        writer = BatchingSender(send)

        async def start() -> None:
            """Send the response head if it has not gone yet; raise ``out.bad`` if the
            handler's headers were invalid (then the head goes without them)."""
            head = out.head()
            if head is None:
                return
            headers, trailers = head
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": headers,
                    "trailers": trailers,
                }
            )

        async def emit(message: Message) -> None:
            out.check(message)
            if not out.started:
                await start()
                if out.bad is not None:
                    raise out.bad
            await writer.write(out.frame(message))

        error: ConnectError | None = None
        try:
            with Deadline(enforced(plan.timeout)):
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
        except asyncio.CancelledError:
            writer.abort()
            if watch.client_gone(ctx):
                return
            raise
        except _ClientGoneError:
            writer.abort()
            ctx._cancel()
            return
        except Exception as exc:
            if writer.failed:  # the response could not be written: nobody is listening
                ctx._cancel()
                return
            error = failure(exc, method.procedure)
        finally:
            watch.stop()
        if out.whole_error(error):
            assert error is not None
            writer.abort()
            if body is not None:
                await body.drain(ctx.timeout_remaining())
            await _send_simple(send, out.error_reply(error))
            return
        if body is not None:
            # Take the rest of an unread upload before the head goes out, if it has not yet
            # (as the unary path does): an HTTP/1.1 client still writing when the answer
            # starts may fail its write and drop the connection with the answer half read.
            await body.drain(ctx.timeout_remaining())
        await start()
        end, http_trailers = out.end(error)
        try:
            await writer.finish(end, http_trailers)
        except Exception:
            if not writer.failed:
                raise


async def _send_simple(send: Send, reply: Reply) -> None:
    """Send a whole (error) response, with HTTP trailers if given. Shielded: a cancellation
    arriving between the head and the body (a deadline racing the client going away) must
    not leave the client with a head that promises a body which never comes. ``send`` is
    bounded in time, so the shielded write cannot outlive a client that is gone."""

    async def write() -> None:
        trailers = reply.trailers
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": reply.status,
                    "headers": reply.headers,
                    "trailers": trailers is not None,
                }
            )
            await send({"type": "http.response.body", "body": reply.body})
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
