"""Server interceptors: each handler wrapped once, at app construction, in the chain.

The wrapper runs ``on_start`` before the handler, passes every request message through
``on_request`` and every response message through ``on_response``, and runs ``on_end`` once
with the call's outcome: the handler's ``ConnectError``, ``deadline_exceeded`` or
``canceled`` when the handler was cancelled, ``internal`` for any other exception. A
``ConnectError`` raised by a hook is answered like one raised by the handler.

One wrapper serves both kinds of handler. A sync handler (WSGI) is adapted to the async
wrapper and back: its iterators become async iterators that never suspend, and the wrapper's
coroutines are run to completion in one step (``run_now``). Hooks must then be plain
functions: an ``async def`` hook is refused when the app is built (``check_sync_hooks``), and
a hook whose awaitable would wait fails the call with ``TypeError``, since a WSGI server has
no event loop to wait on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from google.protobuf.message import Message
from multidict import CIMultiDict

from connectrpc._aio.interceptors import InterceptorChain
from connectrpc._core.awaitables import run_now
from connectrpc._core.code import Code
from connectrpc._core.error import ConnectError, canceled
from connectrpc._core.interceptor import Call, Peer
from connectrpc._server.context import RequestContext
from connectrpc._server.handler import Handler
from connectrpc.method import StreamType

__all__ = ["ClientGoneError", "check_sync_hooks", "intercept"]

T = TypeVar("T")

_SYNC_HOOKS = (
    "interceptors of a sync (WSGI) server run on its request thread, where there is nothing "
    "to await: make the hook a plain function"
)


class ClientGoneError(Exception):
    """The client disconnected, or stopped reading; there is nobody to answer."""


def check_sync_hooks(chain: InterceptorChain | None) -> None:
    """Refuse, when a sync app is built, interceptors whose hooks are ``async def``."""
    if chain is not None:
        chain.refuse_async_hooks(_SYNC_HOOKS)


_WAITED = f"an interceptor hook waited for something; {_SYNC_HOOKS}"


def _call(handler: Handler, ctx: RequestContext) -> Call:
    peer = ctx.peer
    return Call(
        handler.method,
        is_client=False,
        protocol=ctx.protocol,
        peer=None if peer is None else Peer(peer[0], peer[1]),
        timeout=ctx.timeout_remaining(),
        request_headers=lambda: CIMultiDict(ctx.request_headers),
        response_headers=ctx.response_headers,
        response_trailers=ctx.response_trailers,
    )


def _outcome(exc: BaseException, ctx: RequestContext, call: Call) -> ConnectError:
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, (ClientGoneError, GeneratorExit)) or not isinstance(exc, Exception):
        if ctx.timeout_remaining() == 0:
            return ConnectError(Code.DEADLINE_EXCEEDED, "the deadline was exceeded")
        return canceled()
    call.exception = exc
    return ConnectError(Code.INTERNAL, "internal error")


async def _iterate(messages: Iterator[Message]) -> AsyncIterator[Message]:
    """A sync handler's iterator as the wrapper sees it; closing one closes the other."""
    try:
        for message in messages:
            yield message
    finally:
        close = getattr(messages, "close", None)
        if close is not None:
            close()


def _drive(messages: AsyncIterator[Message]) -> Iterator[Message]:
    """An async iterator that never suspends, as a sync handler (or WSGI) sees it."""
    try:
        while True:
            try:
                message = run_now(messages.__anext__(), _WAITED)
            except StopAsyncIteration:
                return
            yield message
    finally:
        aclose = getattr(messages, "aclose", None)
        if aclose is not None:
            run_now(aclose(), _WAITED)


def _as_async(handler: Handler) -> Callable[[Any, RequestContext], Any]:
    """A sync handler's function with the async handler's signature."""
    fn = handler.fn
    server_streams = handler.method.stream_type.server_streams

    def adapted(request: Any, ctx: RequestContext) -> Any:
        if isinstance(request, AsyncIterator):
            request = _drive(request)
        result = fn(request, ctx)
        return _iterate(result) if server_streams else _resolved(result)

    return adapted


async def _resolved(value: T) -> T:
    return value


def _as_sync(handler: Handler, wrapped: Handler) -> Handler:
    """The async ``wrapped`` as the sync handler's function again."""
    kind = handler.method.stream_type
    fn = wrapped.fn

    def unwrapped(request: Any, ctx: RequestContext) -> Any:
        if kind.client_streams:
            request = _iterate(request)
        result = fn(request, ctx)
        return _drive(result) if kind.server_streams else run_now(result, _WAITED)

    return Handler(handler.method, unwrapped, sync=True)


def intercept(handler: Handler, chain: InterceptorChain) -> Handler:
    """``handler`` with ``chain`` around it."""
    if handler.sync:
        async_handler = Handler(handler.method, _as_async(handler))
        return _as_sync(handler, _wrap(async_handler, chain))
    return _wrap(handler, chain)


async def _requests_through(
    chain: InterceptorChain, call: Call, requests: AsyncIterator[Message]
) -> AsyncIterator[Message]:
    async for message in requests:
        seen = chain.request(call, message)
        yield seen if isinstance(seen, Message) else await seen


def _wrap(handler: Handler, chain: InterceptorChain) -> Handler:
    """An async ``handler`` with ``chain`` around it."""
    fn = handler.fn
    kind = handler.method.stream_type
    unary_request = kind in (StreamType.UNARY, StreamType.SERVER_STREAM)

    async def started(request: Any, ctx: RequestContext) -> tuple[Call, Any]:
        """The call after ``on_start``, and its request(s) seen through ``on_request``."""
        call = _call(handler, ctx)
        if (pending := chain.start(call)) is not None:
            await pending
        try:
            if unary_request:
                seen = chain.request(call, request)
                request = seen if isinstance(seen, Message) else await seen
            elif chain.intercepts_requests:
                request = _requests_through(chain, call, request)
        except BaseException as exc:
            if (pending := chain.end(call, _outcome(exc, ctx, call))) is not None:
                await pending
            raise
        return call, request

    if not kind.server_streams:

        async def unary_response(request: Any, ctx: RequestContext) -> Message:
            call, request = await started(request, ctx)
            try:
                response = chain.response(call, await fn(request, ctx))
                if not isinstance(response, Message):
                    response = await response
            except BaseException as exc:
                if (pending := chain.end(call, _outcome(exc, ctx, call))) is not None:
                    await pending
                raise
            if (pending := chain.end(call, None)) is not None:
                await pending
            return response

        return Handler(handler.method, unary_response)

    async def stream_response(request: Any, ctx: RequestContext) -> AsyncIterator[Message]:
        call, request = await started(request, ctx)
        try:
            responses = fn(request, ctx)
            try:
                async for response in responses:
                    seen = chain.response(call, response)
                    yield seen if isinstance(seen, Message) else await seen
            finally:
                aclose = getattr(responses, "aclose", None)
                if aclose is not None:
                    await aclose()
        except BaseException as exc:
            if (pending := chain.end(call, _outcome(exc, ctx, call))) is not None:
                await pending
            raise
        if (pending := chain.end(call, None)) is not None:
            await pending

    return Handler(handler.method, stream_response)
