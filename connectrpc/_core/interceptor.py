"""The interceptor shape: one set of hooks for clients and servers, every stream type.

An interceptor sees each RPC through a ``Call`` and four hooks, all optional:

- ``on_start(call)``: before anything is sent (client) or before the handler runs (server).
  It can read and change ``call.request_headers`` (on the client they are then sent), read
  the method, peer and protocol, keep per-call data in ``call.state``, or raise
  ``ConnectError`` to end the call right there with that error.
- ``on_request(call, message)`` / ``on_response(call, message)``: each request and response
  message, on every stream type. Return ``None`` to keep the message or another message to
  replace it; raise ``ConnectError`` to fail the call.
- ``on_end(call, error)``: once, when the call is over, with its error (``None`` on
  success). ``call.response_headers`` and ``call.response_trailers`` are filled by then.
  On the server they are the handler's, still writable when the handler returned before
  sending its first message. Exceptions raised here are logged and ignored: the call's
  outcome is already decided.

Hooks are plain methods, so one interceptor serves async and sync code alike. In async
code any hook may instead be an ``async def`` (to fetch a token, say); it is awaited.

Order: for interceptors ``[a, b, c]``, ``a`` is the outermost. ``on_start`` and
``on_request`` run ``a, b, c``; ``on_response`` and ``on_end`` run ``c, b, a``. A
``ConnectError`` from ``b.on_start`` skips ``c`` (and the call), and ``on_end`` then runs
for ``b`` and ``a`` only: each interceptor whose ``on_start`` ran sees exactly one
``on_end``. This is the order of connect-go's wrapping interceptors
(https://connectrpc.com/docs/go/interceptors), without the closures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from google.protobuf.message import Message
from multidict import CIMultiDict

from connectrpc._core.error import ConnectError
from connectrpc.method import MethodInfo

__all__ = ["Call", "Interceptor", "Peer"]


class Peer(NamedTuple):
    """The other side of a call: for a client the server's host and port (from the base
    URL), for a server the client's address when the ASGI server reports it."""

    host: str
    port: int | None


class Call:
    """One RPC as interceptors see it.

    Attributes:
        method: the RPC (procedure, service, name, stream type, message types).
        is_client: ``True`` in a client, ``False`` in a server.
        protocol: ``"connect"``, ``"grpc"`` or ``"grpc-web"``.
        peer: the other side, or ``None`` when unknown.
        timeout: the call's deadline in seconds from its start, or ``None``.
        request_headers: on the client, the headers the caller added (``extra_headers``),
            writable until sent; the protocol's own (content type, timeouts) are added
            after. On the server, every request header.
        response_headers / response_trailers: filled when the call ends (server: the
            handler's, which interceptors may add to in ``on_start``).
        state: per-call storage for interceptors, e.g. ``call.state[self] = span``.
        exception: on the server, the exception a handler (or hook) raised when it was not
            a ``ConnectError``, as ``on_end`` sees it; the client gets only ``internal``.
    """

    __slots__ = (
        "_request_headers",
        "_request_headers_source",
        "exception",
        "is_client",
        "method",
        "peer",
        "protocol",
        "response_headers",
        "response_trailers",
        "state",
        "timeout",
    )

    def __init__(
        self,
        method: MethodInfo[Any, Any],
        *,
        is_client: bool,
        protocol: str,
        peer: Peer | None,
        timeout: float | None,
        request_headers: CIMultiDict[str] | Callable[[], CIMultiDict[str]],
        response_headers: CIMultiDict[str] | None = None,
        response_trailers: CIMultiDict[str] | None = None,
    ) -> None:
        self.method = method
        self.is_client = is_client
        self.protocol = protocol
        self.peer = peer
        self.timeout = timeout
        # A server decodes the request headers only if an interceptor looks at them.
        if callable(request_headers):
            self._request_headers: CIMultiDict[str] | None = None
            self._request_headers_source: Callable[[], CIMultiDict[str]] | None = request_headers
        else:
            self._request_headers = request_headers
            self._request_headers_source = None
        self.response_headers: CIMultiDict[str] = (
            CIMultiDict() if response_headers is None else response_headers
        )
        self.response_trailers: CIMultiDict[str] = (
            CIMultiDict() if response_trailers is None else response_trailers
        )
        self.state: dict[object, Any] = {}
        self.exception: BaseException | None = None

    @property
    def request_headers(self) -> CIMultiDict[str]:
        headers = self._request_headers
        if headers is None:
            assert self._request_headers_source is not None
            headers = self._request_headers = self._request_headers_source()
        return headers

    @request_headers.setter
    def request_headers(self, headers: CIMultiDict[str]) -> None:
        self._request_headers = headers

    def __repr__(self) -> str:
        side = "client" if self.is_client else "server"
        return f"<Call {side} {self.protocol} {self.method.procedure}>"


class Interceptor:
    """Base class of interceptors: override the hooks you need (see the module docs).

    Each default does nothing, and the runtime skips hooks that are not overridden, so an
    interceptor costs only what its own hooks do.
    """

    def on_start(self, call: Call) -> Awaitable[None] | None:
        """Before the call: change request headers, or raise ``ConnectError`` to stop it."""
        return None

    def on_request(
        self, call: Call, message: Message
    ) -> Awaitable[Message | None] | Message | None:
        """Each request message; return a replacement, or ``None`` to keep it."""
        return None

    def on_response(
        self, call: Call, message: Message
    ) -> Awaitable[Message | None] | Message | None:
        """Each response message; return a replacement, or ``None`` to keep it."""
        return None

    def on_end(self, call: Call, error: ConnectError | None) -> Awaitable[None] | None:
        """Once, after the call, with its error (``None`` on success)."""
        return None
