"""``RequestContext``: what a service handler can see and set besides its messages."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from .method import MethodInfo

__all__ = ["RequestContext"]


class RequestContext:
    """Per-call information for a handler.

    Attributes:
        method: the RPC being served.
        http_method: ``"POST"``, or ``"GET"`` for a Connect GET request.
        peer: ``(host, port)`` of the client when the server knows it.
        response_headers: headers to send; set them before the first response message of a
            stream, since headers go out with it.
        response_trailers: trailers to send at the end of the response.
    """

    __slots__ = (
        "_deadline",
        "_raw_headers",
        "_request_headers",
        "http_method",
        "method",
        "peer",
        "response_headers",
        "response_trailers",
    )

    def __init__(
        self,
        method: MethodInfo[Any, Any],
        raw_headers: Iterable[tuple[bytes, bytes]],
        http_method: str,
        peer: tuple[str, int] | None,
        timeout: float | None,
    ) -> None:
        self.method = method
        self._raw_headers = raw_headers
        self._request_headers: CIMultiDictProxy[str] | None = None
        self.http_method = http_method
        self.peer = peer
        self.response_headers: CIMultiDict[str] = CIMultiDict()
        self.response_trailers: CIMultiDict[str] = CIMultiDict()
        self._deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout

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

    def timeout_remaining(self) -> float | None:
        """Seconds left before the client's deadline, or ``None`` if it set none."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - asyncio.get_running_loop().time())
