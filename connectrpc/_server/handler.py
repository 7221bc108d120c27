"""Typed bindings of service methods to RPC descriptions, one factory per stream type."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
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
    "unary_handler",
]

ReqT = TypeVar("ReqT", bound=Message)
ResT = TypeVar("ResT", bound=Message)


@dataclass(frozen=True)
class Handler:
    """A method implementation bound to its ``MethodInfo``; build with the factories."""

    method: MethodInfo[Any, Any]
    fn: Callable[..., Any]


def _check(method: MethodInfo[Any, Any], expected: StreamType) -> None:
    if method.stream_type is not expected:
        raise ValueError(
            f"{method.procedure} is a {method.stream_type.value} method; "
            f"bind it with {method.stream_type.value}_handler"
        )


def unary_handler(
    method: MethodInfo[ReqT, ResT],
    fn: Callable[[ReqT, RequestContext], Awaitable[ResT]],
) -> Handler:
    _check(method, StreamType.UNARY)
    return Handler(method, fn)


def client_stream_handler(
    method: MethodInfo[ReqT, ResT],
    fn: Callable[[AsyncIterator[ReqT], RequestContext], Awaitable[ResT]],
) -> Handler:
    _check(method, StreamType.CLIENT_STREAM)
    return Handler(method, fn)


def server_stream_handler(
    method: MethodInfo[ReqT, ResT],
    fn: Callable[[ReqT, RequestContext], AsyncIterator[ResT]],
) -> Handler:
    _check(method, StreamType.SERVER_STREAM)
    return Handler(method, fn)


def bidi_stream_handler(
    method: MethodInfo[ReqT, ResT],
    fn: Callable[[AsyncIterator[ReqT], RequestContext], AsyncIterator[ResT]],
) -> Handler:
    _check(method, StreamType.BIDI_STREAM)
    return Handler(method, fn)
