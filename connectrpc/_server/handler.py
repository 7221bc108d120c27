"""Typed bindings of service methods to RPC descriptions, one factory per stream type.

The plain factories (``unary_handler`` ...) bind ``async def`` methods, for
``ConnectASGIApplication``; the ``sync_*`` factories bind plain methods (and plain generators
for streamed responses), for ``ConnectWSGIApplication``. Each application refuses the other
kind when it is built.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf.message import Message

from connectrpc._server.context import RequestContext
from connectrpc.method import MethodInfo, StreamType

__all__ = [
    "Handler",
    "bidi_stream_handler",
    "client_stream_handler",
    "server_stream_handler",
    "sync_bidi_stream_handler",
    "sync_client_stream_handler",
    "sync_server_stream_handler",
    "sync_unary_handler",
    "unary_handler",
]

ReqT = TypeVar("ReqT", bound=Message)
ResT = TypeVar("ResT", bound=Message)


@dataclass(frozen=True)
class Handler:
    """A method implementation bound to its ``MethodInfo``; build with the factories.

    ``sync`` tells a plain implementation (for WSGI) from an ``async`` one (for ASGI).
    """

    method: MethodInfo[Any, Any]
    fn: Callable[..., Any]
    sync: bool = False

    def factory(self) -> str:
        """The name of the factory that binds this handler's kind of implementation."""
        prefix = "sync_" if self.sync else ""
        return f"{prefix}{self.method.stream_type.value}_handler"


def _bind(
    method: MethodInfo[Any, Any], fn: Callable[..., Any], expected: StreamType, sync: bool
) -> Handler:
    if method.stream_type is not expected:
        prefix = "sync_" if sync else ""
        raise ValueError(
            f"{method.procedure} is a {method.stream_type.value} method; "
            f"bind it with {prefix}{method.stream_type.value}_handler"
        )
    return Handler(method, fn, sync)


def unary_handler(
    method: MethodInfo[ReqT, ResT],
    fn: Callable[[ReqT, RequestContext], Awaitable[ResT]],
) -> Handler:
    """One request, one response: ``async def fn(request, ctx) -> response``."""
    return _bind(method, fn, StreamType.UNARY, False)


def client_stream_handler(
    method: MethodInfo[ReqT, ResT],
    fn: Callable[[AsyncIterator[ReqT], RequestContext], Awaitable[ResT]],
) -> Handler:
    """Many requests, one response: ``async def fn(requests, ctx) -> response``, where
    ``requests`` is an async iterator over the messages as they arrive."""
    return _bind(method, fn, StreamType.CLIENT_STREAM, False)


def server_stream_handler(
    method: MethodInfo[ReqT, ResT],
    fn: Callable[[ReqT, RequestContext], AsyncIterator[ResT]],
) -> Handler:
    """One request, many responses: an async generator ``fn(request, ctx)``.

    Each message it yields is sent as it comes; headers set on ``ctx`` before the first
    yield go out with the response head."""
    return _bind(method, fn, StreamType.SERVER_STREAM, False)


def bidi_stream_handler(
    method: MethodInfo[ReqT, ResT],
    fn: Callable[[AsyncIterator[ReqT], RequestContext], AsyncIterator[ResT]],
) -> Handler:
    """Requests and responses both streamed: an async generator ``fn(requests, ctx)``."""
    return _bind(method, fn, StreamType.BIDI_STREAM, False)


def sync_unary_handler(
    method: MethodInfo[ReqT, ResT], fn: Callable[[ReqT, RequestContext], ResT]
) -> Handler:
    """A plain ``def fn(request, ctx) -> response``, for ``ConnectWSGIApplication``."""
    return _bind(method, fn, StreamType.UNARY, True)


def sync_client_stream_handler(
    method: MethodInfo[ReqT, ResT], fn: Callable[[Iterator[ReqT], RequestContext], ResT]
) -> Handler:
    """``def fn(requests, ctx) -> response``; ``requests`` is read from the body as
    iterated, so a large upload is not buffered whole.

    For ``ConnectWSGIApplication``."""
    return _bind(method, fn, StreamType.CLIENT_STREAM, True)


def sync_server_stream_handler(
    method: MethodInfo[ReqT, ResT], fn: Callable[[ReqT, RequestContext], Iterator[ResT]]
) -> Handler:
    """A generator ``fn(request, ctx)``: each message it yields is written to the client
    as it comes (the WSGI server flushes each body chunk)."""
    return _bind(method, fn, StreamType.SERVER_STREAM, True)


def sync_bidi_stream_handler(
    method: MethodInfo[ReqT, ResT],
    fn: Callable[[Iterator[ReqT], RequestContext], Iterator[ResT]],
) -> Handler:
    """A generator ``fn(requests, ctx)``. WSGI runs over HTTP/1.1, so bidi calls are half
    duplex: the client sends every request before the responses come."""
    return _bind(method, fn, StreamType.BIDI_STREAM, True)
