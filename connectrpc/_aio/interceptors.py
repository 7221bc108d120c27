"""Runs a chain of interceptors (``connectrpc._core.interceptor``) in async code.

Hooks that an interceptor does not override are skipped when the chain is built, and a hook
may return an awaitable (an ``async def`` hook), which is awaited. See the core module for
the order and the short-circuit rule.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from google.protobuf.message import Message

from connectrpc._core.code import Code
from connectrpc._core.error import ConnectError, canceled
from connectrpc._core.interceptor import Call, Interceptor

__all__ = ["InterceptorChain"]

logger = logging.getLogger("connectrpc.interceptors")

_HOOKS = ("on_start", "on_request", "on_response", "on_end")
_STARTED = object()  # call.state key: how many interceptors' on_start ran
_ENDED = object()  # call.state key: on_end has run


def _hooks(interceptors: Sequence[object], name: str) -> tuple[tuple[int, Callable[..., Any]], ...]:
    default = getattr(Interceptor, name)
    found = []
    for index, interceptor in enumerate(interceptors):
        hook = getattr(type(interceptor), name, None)
        if hook is not None and hook is not default:
            found.append((index, getattr(interceptor, name)))
    return tuple(found)


class InterceptorChain:
    """The interceptors of a client or a server, ready to run per call."""

    __slots__ = ("_count", "_end", "_request", "_response", "_start")

    def __init__(self, interceptors: Sequence[object]) -> None:
        for interceptor in interceptors:
            if isinstance(interceptor, type):
                raise TypeError(
                    f"interceptors are instances: pass {interceptor.__name__}(), "
                    f"not the class {interceptor.__name__}"
                )
            if not any(hasattr(interceptor, name) for name in _HOOKS):
                raise TypeError(
                    f"{interceptor!r} is not an interceptor: subclass "
                    "connectrpc.interceptors.Interceptor and override on_start, on_request, "
                    "on_response or on_end"
                )
        self._count = len(interceptors)
        self._start = _hooks(interceptors, "on_start")
        self._request = _hooks(interceptors, "on_request")
        # Responses and ends unwind: the innermost interceptor first.
        self._response = tuple(reversed(_hooks(interceptors, "on_response")))
        self._end = tuple(reversed(_hooks(interceptors, "on_end")))

    @staticmethod
    def build(interceptors: Sequence[object]) -> InterceptorChain | None:
        """A chain, or ``None`` when there is nothing to run (the fast path)."""
        return InterceptorChain(interceptors) if interceptors else None

    @property
    def intercepts_requests(self) -> bool:
        return bool(self._request)

    @property
    def intercepts_responses(self) -> bool:
        return bool(self._response)

    def refuse_async_hooks(self, why: str) -> None:
        """Fail with ``TypeError`` (naming the hook, then ``why``) if a hook is an
        ``async def``: for sync clients and servers, which have nothing to await with."""
        for hooks in (self._start, self._request, self._response, self._end):
            for _, hook in hooks:
                if inspect.iscoroutinefunction(hook):
                    raise TypeError(f"{hook.__qualname__} is async; {why}")

    # Each method runs the hooks at once and returns ``None`` (or the message) when every
    # hook was a plain function; only when a hook returns an awaitable does it hand back a
    # coroutine for the caller to await. Callers: ``if (p := chain.start(call)) is not None:
    # await p``, and ``m = chain.request(call, m); if not isinstance(m, Message): m = await m``.

    def start(self, call: Call) -> Awaitable[None] | None:
        """Run ``on_start`` outermost first. If one raises, ``on_end`` runs for it and the
        ones before it, and the exception propagates."""
        hooks = self._start
        for position, (index, hook) in enumerate(hooks):
            try:
                result = hook(call)
            except BaseException as exc:
                return self._start_failed(call, index, exc)
            if result is not None and inspect.isawaitable(result):
                return self._start_rest(call, position, result)
        call.state[_STARTED] = self._count
        return None

    async def _start_rest(self, call: Call, position: int, pending: Awaitable[Any]) -> None:
        hooks = self._start
        current = hooks[position][0]  # the interceptor whose hook is running
        try:
            await pending
            for index, hook in hooks[position + 1 :]:
                current = index
                result = hook(call)
                if result is not None and inspect.isawaitable(result):
                    await result
        except BaseException as exc:
            await self._start_failed(call, current, exc)
        call.state[_STARTED] = self._count

    async def _start_failed(self, call: Call, index: int, exc: BaseException) -> None:
        call.state[_STARTED] = index + 1
        pending = self.end(call, _as_error(exc))
        if pending is not None:
            await pending
        raise exc

    def request(self, call: Call, message: Message) -> Message | Awaitable[Message]:
        """``message`` through each ``on_request``, outermost first."""
        return _through(self._request, call, message)

    def response(self, call: Call, message: Message) -> Message | Awaitable[Message]:
        """``message`` through each ``on_response``, innermost first."""
        return _through(self._response, call, message)

    def end(self, call: Call, error: ConnectError | None) -> Awaitable[None] | None:
        """Run ``on_end`` innermost first, once per call, for each interceptor whose
        ``on_start`` ran. Their exceptions are logged: the outcome is already decided."""
        state = call.state
        if _ENDED in state:
            return None
        state[_ENDED] = True
        started = state.get(_STARTED, self._count)
        hooks = self._end
        for position, (index, hook) in enumerate(hooks):
            if index >= started:
                continue
            try:
                result = hook(call, error)
            except Exception:
                _log_end_failure(hook, call)
                continue
            if result is not None and inspect.isawaitable(result):
                return self._end_rest(call, error, started, position, result)
        return None

    async def _end_rest(
        self,
        call: Call,
        error: ConnectError | None,
        started: int,
        position: int,
        pending: Awaitable[Any],
    ) -> None:
        hooks = self._end
        try:
            await pending
        except Exception:
            _log_end_failure(hooks[position][1], call)
        for index, hook in hooks[position + 1 :]:
            if index >= started:
                continue
            try:
                result = hook(call, error)
                if result is not None and inspect.isawaitable(result):
                    await result
            except Exception:
                _log_end_failure(hook, call)


def _log_end_failure(hook: Callable[..., Any], call: Call) -> None:
    logger.exception("interceptor %r failed in on_end of %r", getattr(hook, "__self__", hook), call)


def _through(
    hooks: tuple[tuple[int, Callable[..., Any]], ...], call: Call, message: Message
) -> Message | Awaitable[Message]:
    """``message`` through ``hooks``: each may keep it (``None``) or replace it, at once or
    as an awaitable (then the rest runs in a coroutine)."""
    for position, (_, hook) in enumerate(hooks):
        result = hook(call, message)
        if result is not None:
            if inspect.isawaitable(result):
                return _through_rest(hooks, position, call, message, result)
            message = result
    return message


async def _through_rest(
    hooks: tuple[tuple[int, Callable[..., Any]], ...],
    position: int,
    call: Call,
    message: Message,
    pending: Awaitable[Message | None],
) -> Message:
    result = await pending
    if result is not None:
        message = result
    for _, hook in hooks[position + 1 :]:
        result = hook(call, message)
        if result is not None:
            if inspect.isawaitable(result):
                result = await result
            if result is not None:
                message = result
    return message


def _as_error(exc: BaseException) -> ConnectError:
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, (KeyboardInterrupt, SystemExit)) or not isinstance(exc, Exception):
        return canceled()
    return ConnectError(Code.INTERNAL, f"an interceptor failed: {type(exc).__name__}")
