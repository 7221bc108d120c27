"""A small service over well-known types, for public-API tests without generated code:
``EchoService`` (async, for the ASGI app) and ``SyncEchoService``, the same as plain
functions (for the WSGI app)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

from google.protobuf import wrappers_pb2

from connectrpc.errors import Code, ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.server import (
    ConnectASGIApplication,
    ConnectWSGIApplication,
    RequestContext,
    ServerOptions,
    bidi_stream_handler,
    client_stream_handler,
    server_stream_handler,
    sync_bidi_stream_handler,
    sync_client_stream_handler,
    sync_server_stream_handler,
    sync_unary_handler,
    unary_handler,
)

S = wrappers_pb2.StringValue
SERVICE = "test.v1.EchoService"

ECHO: MethodInfo[S, S] = MethodInfo(
    SERVICE, "Echo", S, S, StreamType.UNARY, IdempotencyLevel.NO_SIDE_EFFECTS
)
FAIL: MethodInfo[S, S] = MethodInfo(SERVICE, "Fail", S, S, StreamType.UNARY)
SLOW: MethodInfo[S, S] = MethodInfo(SERVICE, "Slow", S, S, StreamType.UNARY)
CONCAT: MethodInfo[S, S] = MethodInfo(SERVICE, "Concat", S, S, StreamType.CLIENT_STREAM)
SPLIT: MethodInfo[S, S] = MethodInfo(SERVICE, "Split", S, S, StreamType.SERVER_STREAM)
UPPER: MethodInfo[S, S] = MethodInfo(SERVICE, "Upper", S, S, StreamType.BIDI_STREAM)
MISSING: MethodInfo[S, S] = MethodInfo(SERVICE, "Missing", S, S, StreamType.UNARY)


class EchoService:
    """Echo-style handlers that exercise headers, trailers, errors and deadlines."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()

    async def echo(self, request: S, ctx: RequestContext) -> S:
        ctx.response_headers["x-echo-method"] = ctx.http_method
        ctx.response_trailers["x-echo-trailer"] = "done"
        if "x-echo" in ctx.request_headers:
            ctx.response_headers["x-echo"] = ctx.request_headers["x-echo"]
        return S(value=request.value)

    async def fail(self, request: S, ctx: RequestContext) -> S:
        ctx.response_trailers["x-why"] = "asked"
        if request.value == "crash":
            raise RuntimeError("secret internal detail")
        raise ConnectError(
            Code.FAILED_PRECONDITION, request.value, details=[wrappers_pb2.Int32Value(value=7)]
        )

    async def slow(self, request: S, ctx: RequestContext) -> S:
        try:
            await asyncio.sleep(float(request.value or "10"))
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return S(value="late")

    async def concat(self, requests: AsyncIterator[S], ctx: RequestContext) -> S:
        parts = [r.value async for r in requests]
        return S(value="".join(parts))

    async def split(self, request: S, ctx: RequestContext) -> AsyncIterator[S]:
        ctx.response_headers["x-count"] = str(len(request.value))
        for ch in request.value:
            if ch == "!":
                raise ConnectError(Code.ABORTED, "bang", metadata={"x-at": "bang"})
            yield S(value=ch)
        ctx.response_trailers["x-end"] = "yes"

    async def upper(self, requests: AsyncIterator[S], ctx: RequestContext) -> AsyncIterator[S]:
        async for r in requests:
            yield S(value=r.value.upper())


def make_app(service: EchoService, options: ServerOptions | None = None) -> ConnectASGIApplication:
    return ConnectASGIApplication(
        [
            unary_handler(ECHO, service.echo),
            unary_handler(FAIL, service.fail),
            unary_handler(SLOW, service.slow),
            client_stream_handler(CONCAT, service.concat),
            server_stream_handler(SPLIT, service.split),
            bidi_stream_handler(UPPER, service.upper),
        ],
        options=options,
    )


class SyncEchoService:
    """``_service.EchoService`` as plain functions, plus what the deadline tests observe."""

    def __init__(self) -> None:
        self.remaining: list[float | None] = []
        self.gave_up = threading.Event()  # a slow handler saw ctx.is_cancelled()
        self.finished = threading.Event()

    def echo(self, request: S, ctx: RequestContext) -> S:
        ctx.response_headers["x-echo-method"] = ctx.http_method
        ctx.response_trailers["x-echo-trailer"] = "done"
        return S(value=request.value)

    def fail(self, request: S, ctx: RequestContext) -> S:
        ctx.response_trailers["x-why"] = "asked"
        if request.value == "crash":
            raise RuntimeError("secret internal detail")
        raise ConnectError(
            Code.FAILED_PRECONDITION, request.value, details=[wrappers_pb2.Int32Value(value=7)]
        )

    def slow(self, request: S, ctx: RequestContext) -> S:
        self.remaining.append(ctx.timeout_remaining())
        end = time.monotonic() + float(request.value or "10")
        try:
            while time.monotonic() < end:
                if ctx.is_cancelled():
                    self.gave_up.set()
                    raise ConnectError(Code.CANCELED, "gave up")
                time.sleep(0.01)
            return S(value="late")
        finally:
            self.finished.set()

    def concat(self, requests: Iterator[S], ctx: RequestContext) -> S:
        return S(value="".join(r.value for r in requests))

    def split(self, request: S, ctx: RequestContext) -> Iterator[S]:
        ctx.response_headers["x-count"] = str(len(request.value))
        for ch in request.value:
            if ch == "!":
                raise ConnectError(Code.ABORTED, "bang", metadata={"x-at": "bang"})
            if ch == "~":
                time.sleep(10)
            yield S(value=ch)
        ctx.response_trailers["x-end"] = "yes"

    def upper(self, requests: Iterator[S], ctx: RequestContext) -> Iterator[S]:
        for r in requests:
            yield S(value=r.value.upper())


def make_wsgi_app(
    service: SyncEchoService | None = None, options: ServerOptions | None = None
) -> ConnectWSGIApplication:
    service = service or SyncEchoService()
    return ConnectWSGIApplication(
        [
            sync_unary_handler(ECHO, service.echo),
            sync_unary_handler(FAIL, service.fail),
            sync_unary_handler(SLOW, service.slow),
            sync_client_stream_handler(CONCAT, service.concat),
            sync_server_stream_handler(SPLIT, service.split),
            sync_bidi_stream_handler(UPPER, service.upper),
        ],
        options=options,
    )
