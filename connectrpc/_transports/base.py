"""The seam between the protocol core and an HTTP implementation.

A client transport sends one HTTP request and exposes the response as a status, headers,
a body read chunk by chunk, and (for HTTP/2) trailers. aiohttp (HTTP/1.1) is the default;
an in-memory transport drives an ASGI app directly for tests, and an HTTP/2 transport can
slot in here later without touching the protocol code.
"""

from __future__ import annotations

import abc
import urllib.parse
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass

from multidict import CIMultiDict, CIMultiDictProxy

from connectrpc._transports.cancel import CancelToken

__all__ = [
    "AsyncTransport",
    "HTTPRequest",
    "Origin",
    "SyncTransport",
    "SyncTransportResponse",
    "TransportResponse",
    "async_body",
    "split_url",
]

Origin = tuple[str, str, int]
"""``(scheme, host, port)``: what a connection pool keys connections by."""


def split_url(url: str) -> tuple[Origin, str, str]:
    """``url``'s origin, request target (path and query) and authority (``host[:port]``,
    without any userinfo). Raises ``ValueError`` for anything but an http(s) URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"cannot send to {url!r}: expected an http:// or https:// URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, parts.hostname, port), target, parts.netloc.rsplit("@", 1)[-1]


@dataclass(frozen=True)
class HTTPRequest:
    """One outgoing request. ``body`` is bytes, or a stream of byte chunks (an async
    iterable for async transports, an iterable for sync ones)."""

    method: str
    url: str
    headers: CIMultiDict[str]
    body: bytes | AsyncIterable[bytes] | Iterable[bytes]
    timeout: float | None
    """Seconds until the whole exchange, body included, must be abandoned."""
    cancel: CancelToken | None = None
    """Sync transports only: cancelling it aborts the exchange from another thread."""


def async_body(
    body: bytes | AsyncIterable[bytes] | Iterable[bytes],
) -> bytes | AsyncIterable[bytes]:
    """``body`` as an async transport sends it; a plain iterable of chunks is a sync
    client's body, which an async transport cannot stream."""
    if isinstance(body, (bytes, AsyncIterable)):
        return body
    raise TypeError(
        "an async transport cannot send a plain iterable as a streaming body: "
        "use the async client with async transports and the sync client with sync ones"
    )


class TransportResponse(abc.ABC):
    """A response whose body is still arriving."""

    status: int
    headers: CIMultiDict[str] | CIMultiDictProxy[str]

    @abc.abstractmethod
    async def read(self) -> bytes:
        """The next chunk of body; ``b""`` once the body is complete."""

    def trailers(self) -> CIMultiDict[str] | None:
        """HTTP trailers, once the body is complete (``None`` where the transport has none)."""
        return None

    @abc.abstractmethod
    async def close(self, *, abort: bool) -> None:
        """Release the connection; ``abort`` when the body was not read to the end."""


class AsyncTransport(abc.ABC):
    """Sends requests. Must raise ``TimeoutError`` when ``request.timeout`` expires and
    ``ConnectionError``-like ``OSError``s for network failures."""

    supports_trailers: bool = False
    """Whether responses can carry HTTP trailers (HTTP/2), which gRPC needs."""

    @abc.abstractmethod
    async def send(self, request: HTTPRequest) -> TransportResponse: ...

    async def aclose(self) -> None:  # noqa: B027 - most transports own nothing
        """Release resources the transport owns."""


class SyncTransportResponse(abc.ABC):
    """A response whose body is still arriving, read by blocking calls."""

    status: int
    headers: CIMultiDict[str] | CIMultiDictProxy[str]

    @abc.abstractmethod
    def read(self) -> bytes:
        """The next chunk of body; ``b""`` once the body is complete. Blocks at most until
        the request's deadline (then ``deadline_exceeded``, connection closed)."""

    def trailers(self) -> CIMultiDict[str] | None:
        """HTTP trailers, once the body is complete (``None`` where the transport has none)."""
        return None

    @abc.abstractmethod
    def close(self, *, abort: bool) -> None:
        """Release the connection; ``abort`` when the body was not read to the end.

        ``close(abort=True)`` may be called from another thread while ``read`` blocks:
        ``read`` then fails with ``canceled`` promptly and the connection is discarded.
        """


class SyncTransport(abc.ABC):
    """Sends requests from blocking code. Raises ``ConnectError`` (``deadline_exceeded``,
    ``canceled``, ``unavailable``) or ``OSError`` for network failures."""

    supports_trailers: bool = False
    """Whether responses can carry HTTP trailers (HTTP/2), which gRPC needs."""

    @abc.abstractmethod
    def send(self, request: HTTPRequest) -> SyncTransportResponse: ...

    def close(self) -> None:  # noqa: B027 - most transports own nothing
        """Release resources the transport owns (idle connections)."""
