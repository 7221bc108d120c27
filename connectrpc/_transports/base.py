"""The seam between the protocol core and an HTTP implementation.

A client transport sends one HTTP request and exposes the response as a status, headers,
a body read chunk by chunk, and (for HTTP/2) trailers. aiohttp (HTTP/1.1) is the default;
an in-memory transport drives an ASGI app directly for tests, and an HTTP/2 transport can
slot in here later without touching the protocol code.
"""

from __future__ import annotations

import abc
import urllib.parse
from collections.abc import AsyncIterable
from dataclasses import dataclass

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["AsyncTransport", "HTTPRequest", "Origin", "TransportResponse", "split_url"]

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
    """One outgoing request. ``body`` is bytes, or an async stream of byte chunks."""

    method: str
    url: str
    headers: CIMultiDict[str]
    body: bytes | AsyncIterable[bytes]
    timeout: float | None
    """Seconds until the whole exchange, body included, must be abandoned."""


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
