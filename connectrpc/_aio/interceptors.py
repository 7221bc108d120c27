"""Runs a chain of interceptors (``connectrpc._core.interceptor``) in async code.

Hooks that an interceptor does not override are skipped when the chain is built, and a hook
may return an awaitable (an ``async def`` hook), which is awaited. See the core module for
the order and the short-circuit rule.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf.message import Message

from connectrpc._core.code import Code
from connectrpc._core.error import ConnectError
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

    async def start(self, call: Call) -> None:
        """Run ``on_start`` outermost first. If one raises, ``on_end`` runs for it and the
        ones before it, and the exception propagates."""
        for index, hook in self._start:
            try:
                result = hook(call)
                if result is not None and inspect.isawaitable(result):
                    await result
            except BaseException as exc:
                call.state[_STARTED] = index + 1
                await self.end(call, _as_error(exc))
                raise
        call.state[_STARTED] = self._count

    async def request(self, call: Call, message: Message) -> Message:
        """``message`` through each ``on_request``, outermost first."""
        return await _through(self._request, call, message)

    async def response(self, call: Call, message: Message) -> Message:
        """``message`` through each ``on_response``, innermost first."""
        return await _through(self._response, call, message)

    async def end(self, call: Call, error: ConnectError | None) -> None:
        """Run ``on_end`` innermost first, once per call, for each interceptor whose
        ``on_start`` ran. Their exceptions are logged: the outcome is already decided."""
        state = call.state
        if _ENDED in state:
            return
        state[_ENDED] = True
        started = state.get(_STARTED, self._count)
        for index, hook in self._end:
            if index >= started:
                continue
            try:
                result = hook(call, error)
                if result is not None and inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("interceptor %r failed in on_end of %r", hook.__self__, call)


async def _through(
    hooks: tuple[tuple[int, Callable[..., Any]], ...], call: Call, message: Message
) -> Message:
    """``message`` through ``hooks``: each may keep it (``None``) or replace it, at once or
    as an awaitable."""
    for _, hook in hooks:
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
        return ConnectError(Code.CANCELED, "the call was cancelled")
    return ConnectError(Code.INTERNAL, f"an interceptor failed: {type(exc).__name__}")
