"""``RequestContext``: what a service handler can see and set besides its messages."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Iterable
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from connectrpc.method import MethodInfo

__all__ = ["RequestContext"]


class RequestContext:
    """Per-call information for a handler.

    Attributes:
        method: the RPC being served.
        http_method: ``"POST"``, or ``"GET"`` for a Connect GET request.
        peer: ``(host, port)`` of the client when the server knows it.
        protocol: ``"connect"``, ``"grpc"`` or ``"grpc-web"``.
        response_headers: headers to send; set them before the first response message of a
            stream, since headers go out with it.
        response_trailers: trailers to send at the end of the response.

    A handler that works for a long time can poll ``timeout_remaining()`` and
    ``is_cancelled()``: under WSGI a sync handler that overruns its deadline is not
    interrupted (Python cannot stop a thread), the server answers ``deadline_exceeded`` at the
    deadline and marks the context cancelled, and whatever the handler returns afterwards is
    discarded.
    """

    __slots__ = (
        "_cancelled",
        "_clock",
        "_deadline",
        "_query",
        "_query_string",
        "_raw_headers",
        "_request_headers",
        "http_method",
        "method",
        "peer",
        "protocol",
        "response_headers",
        "response_trailers",
    )

    def __init__(
        self,
        method: MethodInfo[Any, Any] | None,
        raw_headers: Iterable[tuple[bytes, bytes]],
        http_method: str,
        peer: tuple[str, int] | None,
        timeout: float | None,
        query_string: bytes = b"",
        protocol: str = "connect",
    ) -> None:
        self.method = method
        self.protocol = protocol
        self._query_string = query_string
        self._query: MultiDictProxy[str] | None = None
        self._raw_headers = raw_headers
        self._request_headers: CIMultiDictProxy[str] | None = None
        self.http_method = http_method
        self.peer = peer
        self.response_headers: CIMultiDict[str] = CIMultiDict()
        self.response_trailers: CIMultiDict[str] = CIMultiDict()
        self._cancelled = False
        # The event loop's clock under ASGI (the one its deadline timers use), the monotonic
        # clock in a thread without a loop (WSGI).
        try:
            self._clock = asyncio.get_running_loop().time
        except RuntimeError:
            self._clock = time.monotonic
        self._deadline = None if timeout is None else self._clock() + timeout

    @property
    def request_headers(self) -> CIMultiDictProxy[str]:
        """The request's headers (read-only)."""
        if self._request_headers is None:
            self._request_headers = CIMultiDictProxy(
                CIMultiDict(
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in self._raw_headers
                )
            )
        return self._request_headers

    @property
    def query(self) -> MultiDictProxy[str]:
        """The request URL's query parameters, percent-decoded, in order (read-only).

        For a Connect GET request these are the protocol's own (``connect``, ``encoding``,
        ``message``, ``base64``, ``compression``) plus any the client added; POST requests
        usually have none.
        """
        if self._query is None:
            pairs = urllib.parse.parse_qsl(
                self._query_string.decode("latin-1"), keep_blank_values=True
            )
            self._query = MultiDictProxy(MultiDict(pairs))
        return self._query

    def timeout_remaining(self) -> float | None:
        """Seconds left before the client's deadline, or ``None`` if it set none."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - self._clock())

    def is_cancelled(self) -> bool:
        """Whether the server has given up on this call: its deadline passed, or the client
        went away. The answer has then been sent (or nobody is listening), and whatever the
        handler produces from now on is dropped; a long-running sync handler can check this to
        stop early. (An async handler is told by ``asyncio`` cancellation instead; the ASGI
        app sets this only when the client goes away.)"""
        return self._cancelled

    def _cancel(self) -> None:
        """Mark the call as given up (the servers do this; ``is_cancelled()`` then says so)."""
        self._cancelled = True
