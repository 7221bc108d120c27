"""The WSGI application (PEP 3333) that serves Connect and gRPC-Web RPCs with sync handlers.

This is the sync IO layer of the server, beside ``asgi.py``: it reads the request from
``wsgi.input``, lets the shared call logic (``dispatch.py``) admit, decode and answer it,
and returns the response body as an iterator, so that a streamed response goes out message
by message as the handler yields (https://peps.python.org/pep-3333/). WSGI serves HTTP/1.1:

* Connect (https://connectrpc.com/docs/protocol): unary (also as GET), client, server and
  half-duplex bidi streams; gRPC-Web, whose trailers travel in the body.
* gRPC needs HTTP trailers, which WSGI cannot send: such a request gets an ``unavailable``
  error naming the fix (the ASGI application under an HTTP/2 server, or gRPC-Web).
* Deadlines (``connect-timeout-ms``, ``grpc-timeout``) are answered at the deadline: a call
  with one runs in a worker thread (``threads.py``) while the server's thread waits for it
  with a timeout. A call without one runs in the server's thread.
* Reads of ``wsgi.input`` block inside the server: a stalled upload is bounded by the server's
  own timeout (gunicorn ``--timeout``, waitress ``channel_timeout``) or the call's deadline,
  not by ``ServerOptions.read_idle_timeout``.
"""

from __future__ import annotations

import contextlib
import functools
import http
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from google.protobuf.message import Message

from connectrpc._aio.deadline import deadline_exceeded
from connectrpc._protocol.server import RawHeaders, RequestPlan
from connectrpc._server import dispatch
from connectrpc._server.handler import Handler
from connectrpc._server.intercept import check_sync_hooks
from connectrpc._server.options import ServerOptions
from connectrpc._server.threads import DeadlineThreads
from connectrpc.method import StreamType

__all__ = ["ConnectWSGIApplication"]

StartResponse = Callable[..., Any]
Environ = Mapping[str, Any]

_CHUNK = 64 * 1024
_DRAIN_MAX_BYTES = 8 * 1024 * 1024


class _Head(NamedTuple):
    """The head of a streamed response (status 200); its body chunks follow."""

    headers: RawHeaders


_Item = dispatch.Reply | _Head | bytes


def _status_line(status: int) -> str:
    if status == 499:  # Connect's "canceled": nginx's name, not in the HTTP registry
        return "499 Client Closed Request"
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def _native(headers: RawHeaders) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]


# The environ keys of the headers the protocols read (PEP 3333: CGI names, HTTP_ prefixed
# but for the two CGI has its own), to pick them without walking the whole environ.
_PROTOCOL_KEYS = tuple(
    (
        ("CONTENT_TYPE" if name == b"content-type" else "HTTP_" + name.decode().upper()).replace(
            "-", "_"
        ),
        name.decode(),
    )
    for name in dispatch.PROTOCOL_HEADERS
)


def _protocol_headers(environ: Environ) -> dict[str, str]:
    return {name: environ[key] for key, name in _PROTOCOL_KEYS if key in environ}


def environ_headers(environ: Environ) -> Iterator[tuple[str, str]]:
    """The request's header fields, by lower-case name, from the CGI-style environ keys
    (PEP 3333: ``HTTP_*``, and ``CONTENT_TYPE`` / ``CONTENT_LENGTH`` without the prefix)."""
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            yield key[5:].replace("_", "-").lower(), str(value)
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            yield key.replace("_", "-").lower(), str(value)


class _RequestHeaders:
    """Every request header field, as ASGI has them; built only if the handler reads
    ``ctx.request_headers``."""

    __slots__ = ("_environ",)

    def __init__(self, environ: Environ) -> None:
        self._environ = environ

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        for name, value in environ_headers(self._environ):
            yield name.encode("latin-1"), value.encode("latin-1")


class _Input:
    """``wsgi.input``, read in pieces up to the request's end: ``CONTENT_LENGTH`` bytes, or
    the end of a chunked body where the server marks the input terminated."""

    __slots__ = ("_left", "_stream", "done")

    def __init__(self, environ: Environ) -> None:
        self._stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH")
        self._left: int | None = int(length) if length else None
        self.done = self._left == 0 or (
            self._left is None and not environ.get("wsgi.input_terminated", False)
        )

    def read(self) -> bytes:
        """The next piece of the body; ``b""`` once it has all been read."""
        if self.done:
            return b""
        size = _CHUNK if self._left is None else min(_CHUNK, self._left)
        piece: bytes = self._stream.read(size)
        if self._left is not None:
            self._left -= len(piece)
        self.done = not piece or self._left == 0
        return piece

    def drain(self, time_left: float | None) -> None:
        """Discard up to a bound of the unread body before answering early, so that an
        HTTP/1.1 client still uploading is not reset when the server closes the connection
        (``asgi.py`` explains). Not once the deadline has passed: the answer is due."""
        drained = 0
        while time_left != 0 and drained <= _DRAIN_MAX_BYTES and not self.done:
            drained += len(self.read())


class _RequestStream(Iterator[Message]):
    """The request messages of a streaming call, read from ``wsgi.input`` as iterated."""

    def __init__(
        self, body: _Input, plan: RequestPlan, message_type: type[Message], limit: int | None
    ) -> None:
        self._body = body
        self._messages = dispatch.RequestMessages(plan, message_type, limit)

    def _fed(self) -> dispatch.RequestMessages:
        piece = self._body.read()
        self._messages.feed(piece, self._body.done)
        return self._messages

    def __next__(self) -> Message:
        message = self._messages.take()
        while message is None and not self._messages.ended:
            message = self._fed().take()
        if message is None:
            raise StopIteration
        return message

    def single(self, procedure: str) -> Message:
        messages = self._messages
        found = messages.single(procedure)
        while found is None:
            found = self._fed().single(procedure)
        return found


def _expired(call: dispatch.Call, started: bool) -> _Item:
    """The answer at the deadline: a whole ``deadline_exceeded`` response, or the end of a
    response that has started."""
    error = deadline_exceeded()
    if started:
        return dispatch.end_of_stream(call, error)[0]
    return dispatch.answer_error(
        call.protocol, call.plan, call.ctx, error, call.handler.method.procedure
    )


def _whole(start_response: StartResponse, reply: dispatch.Reply) -> list[bytes]:
    start_response(_status_line(reply.status), _native(reply.headers))
    return [reply.body]


class ConnectWSGIApplication:
    """A WSGI application serving sync handlers over Connect and gRPC-Web (HTTP/1.1).

    Bind plain functions with ``sync_unary_handler``, ``sync_client_stream_handler``,
    ``sync_server_stream_handler`` and ``sync_bidi_stream_handler``, and run the app under
    any WSGI server: gunicorn (``sync`` or ``gthread`` workers), waitress, mod_wsgi. A server
    stream's messages are written as the handler yields them. Interceptors run with plain
    (non-async) hooks. Requests for unknown procedures get HTTP 404 (``unimplemented``).

    ``deadline_workers`` bounds the threads that run calls with a deadline (see the module
    docstring); a handler still running past its deadline keeps its thread until it returns,
    so long handlers should check ``ctx.is_cancelled()``.
    """

    deadline_workers = 32

    def __init__(
        self, handlers: Sequence[Handler], *, options: ServerOptions | None = None
    ) -> None:
        self._options = options = options or ServerOptions()
        self._router = dispatch.Router(handlers, options, sync=True, app="ConnectWSGIApplication")
        check_sync_hooks(self._router.chain)
        self._threads = DeadlineThreads(self.deadline_workers)

    @property
    def procedures(self) -> tuple[str, ...]:
        """The HTTP paths this application serves."""
        return tuple(self._router.routes)

    @property
    def handlers(self) -> tuple[Handler, ...]:
        """The handlers this application serves, in the order given."""
        return self._router.handlers

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        body = _Input(environ)
        port = environ.get("REMOTE_PORT")
        host = environ.get("REMOTE_ADDR")
        admitted = self._router.admit(
            environ.get("PATH_INFO", ""),
            environ["REQUEST_METHOD"],
            _RequestHeaders(environ),
            environ.get("QUERY_STRING", "").encode("latin-1"),
            (host, int(port)) if host and port else None,
            False,
            _protocol_headers(environ),
        )
        if isinstance(admitted, dispatch.Reply):
            body.drain(None)
            return _whole(start_response, admitted)
        response = self._respond(admitted, body)
        timeout = dispatch.enforced(admitted.plan.timeout)
        items: Iterator[_Item] = response
        if timeout is not None:
            expire = functools.partial(_expired, admitted)
            items = self._threads.run(response, timeout, admitted.ctx, expire)
        first = next(items)
        if isinstance(first, dispatch.Reply):
            return _whole(start_response, first)
        assert isinstance(first, _Head)
        start_response("200 OK", _native(first.headers))
        return items  # type: ignore[return-value]  # bytes only, after the head

    def _respond(self, call: dispatch.Call, body: _Input) -> Generator[_Item, None, None]:
        """The whole response of ``call``: a ``dispatch.Reply``, or a ``_Head`` then body chunks."""
        if call.plan.stream:
            yield from self._stream(call, body)
        else:
            yield self._unary(call, body)

    def _unary(self, call: dispatch.Call, body: _Input) -> dispatch.Reply:
        plan, ctx, method = call.plan, call.ctx, call.handler.method
        limit = self._options.read_max_bytes
        try:
            data = plan.get_message
            if data is None:
                buffer = dispatch.RequestBody(plan, limit)
                while piece := body.read():
                    buffer.append(piece)
                data = buffer.take()
            request = dispatch.decode_request(plan, data, method.input, limit)
            response = call.handler.fn(request, ctx)
            return dispatch.unary_reply(call, response, self._options.compress_min_bytes)
        except Exception as exc:
            error = dispatch.failure(exc, method.procedure)
        body.drain(ctx.timeout_remaining())
        return dispatch.error_reply(call.protocol, plan, error, ctx, method.procedure)

    def _stream(self, call: dispatch.Call, body: _Input) -> Iterator[_Item]:
        """An enveloped call: Connect streams and every gRPC-Web call."""
        ctx, method = call.ctx, call.handler.method
        out = dispatch.ResponseStream(call, self._options.compress_min_bytes)
        requests = _RequestStream(body, call.plan, method.input, self._options.read_max_bytes)
        error = None
        try:
            with contextlib.closing(_responses(call, requests)) as responses:
                for response in responses:
                    out.check(response)
                    head = out.head()
                    if head is not None:
                        yield _Head(head[0])
                        if out.bad is not None:
                            raise out.bad
                    yield out.frame(response)
        except Exception as exc:
            error = dispatch.failure(exc, method.procedure)
        body.drain(ctx.timeout_remaining())
        if out.whole_error(error):
            assert error is not None
            yield out.error_reply(error)
            return
        head = out.head()
        if head is not None:
            yield _Head(head[0])
        yield out.end(error)[0]


def _responses(call: dispatch.Call, requests: _RequestStream) -> Generator[Message, None, None]:
    """The handler's response messages, whatever the method's shape."""
    fn, ctx = call.handler.fn, call.ctx
    procedure = call.handler.method.procedure
    kind = call.handler.method.stream_type
    if kind is StreamType.UNARY:
        yield fn(requests.single(procedure), ctx)
    elif kind is StreamType.CLIENT_STREAM:
        yield fn(requests, ctx)
    else:
        first = requests.single(procedure) if kind is StreamType.SERVER_STREAM else requests
        responses = fn(first, ctx)
        try:
            yield from responses
        finally:
            close = getattr(responses, "close", None)
            if close is not None:
                close()
