"""The HTTP/1.1 client side of RFC 9112 without IO, shared by the asyncio and blocking transports.

Both ``HTTP1Transport`` (asyncio) and ``SyncHTTP1Transport`` (blocking sockets) send the
same bytes and read responses by the same rules; they differ only in how bytes move. This
module holds what they share, as plain functions and state over bytes:

- the request head (RFC 9112 section 3: request line, ``host``, fields), with a ``bytes``
  body appended and framed by ``content-length``, or announced as ``transfer-encoding:
  chunked`` for a streamed body, each piece then framed by ``chunk`` and ended by
  ``LAST_CHUNK`` (RFC 9112 section 7.1);
- ``ResponseParser``: httptools' response parser and the state an exchange needs from it
  (status, header fields, body pieces, completion, keep-alive), with the limits a client
  must keep on what a server sends. The response head, with any interim ``1xx`` responses
  before it, is bounded in bytes and in header fields; interim responses (``100 Continue``,
  ``103 Early Hints``) are skipped, as RFC 9110 section 15.2 requires; a status outside
  100-999 is invalid. httptools removes any chunked framing from the body; a body with
  neither ``content-length`` nor chunked framing ends when the connection closes (RFC 9112
  section 6.3), so such a connection is never reused.

Errors are ``ConnectError``s: a malformed or oversized response is ``internal``, a
connection that fails or closes before the response is complete ``unavailable``.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable, Iterable

from multidict import CIMultiDict

from connectrpc._core.buffer import ChunkBuffer
from connectrpc._core.code import Code
from connectrpc._core.error import ConnectError
from connectrpc._transports.base import Origin, split_url

__all__ = [
    "LAST_CHUNK",
    "HTTP1Settings",
    "RequestTargets",
    "ResponseParser",
    "chunk",
    "connect_failed",
    "encode_request",
]

LAST_CHUNK = b"0\r\n\r\n"
"""The end of a chunked body: the zero-size chunk and an empty trailer section."""

_MAX_CACHED_URLS = 4096


def chunk(piece: bytes) -> bytes:
    """``piece`` framed as one chunk of a chunked body (not empty: that ends the body)."""
    return b"%x\r\n%b\r\n" % (len(piece), piece)


class RequestTargets:
    """Splits URLs into their origin and the request line's tail, caching the answers (a
    client calls the same few URLs again and again)."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[str, tuple[Origin, bytes]] = {}

    def split(self, url: str) -> tuple[Origin, bytes]:
        """``url``'s origin, and the bytes after the method in its request head: the target,
        the protocol version and the ``host`` field (RFC 9112 sections 3.2 and 3.2.2)."""
        cached = self._cache.get(url)
        if cached is not None:
            return cached
        origin, target, host = split_url(url)
        prefix = f" {target} HTTP/1.1\r\nhost: {host}\r\n".encode("latin-1")
        if len(self._cache) < _MAX_CACHED_URLS:
            self._cache[url] = (origin, prefix)
        return origin, prefix


class HTTP1Settings:
    """The settings both HTTP/1.1 transports take, checked once, and their URL cache.

    The transports document them; ``_init_pool`` sets up each one's own connection pool.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections_per_origin: int = 100,
        max_header_bytes: int = 64 * 1024,
        max_headers: int = 256,
    ) -> None:
        import httptools  # noqa: F401 - fail here, with the import error, not per request

        if max_connections_per_origin < 1:
            raise ValueError("max_connections_per_origin must be at least 1")
        if max_header_bytes < 1 or max_headers < 1:
            raise ValueError("max_header_bytes and max_headers must be at least 1")
        self._ssl = ssl_context
        self._max_connections = max_connections_per_origin
        self._max_header_bytes = max_header_bytes
        self._max_headers = max_headers
        self._targets = RequestTargets()
        self._init_pool()

    def _init_pool(self) -> None:
        """Set up the transport's connection pool; called by ``__init__``."""
        raise NotImplementedError


def encode_request(
    method: str,
    prefix: bytes,
    headers: CIMultiDict[str],
    body: bytes | bytearray | AsyncIterable[bytes] | Iterable[bytes],
) -> tuple[bytes, bool]:
    """The request head, followed by ``body`` when it is bytes, and whether the body is
    streamed instead (chunked: the caller then sends each piece through ``chunk``).

    A ``bytes`` body gets a ``content-length``, except an empty one on ``GET``. A field
    with a line break is refused (``ValueError``): it would split the head.
    """
    lines = [method.encode("latin-1"), prefix]
    for key, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in key or "\r" in key:
            raise ValueError(f"header {key!r} contains a line break")
        lines.append(f"{key}: {value}\r\n".encode("latin-1"))
    if not isinstance(body, (bytes, bytearray)):
        lines.append(b"transfer-encoding: chunked\r\n\r\n")
        return b"".join(lines), True
    if body or method != "GET":
        lines.append(b"content-length: %d\r\n" % len(body))
    lines.append(b"\r\n")
    lines.append(bytes(body))
    return b"".join(lines), False


def connect_failed(host: str, port: int, exc: BaseException) -> ConnectError:
    """The error for a connection that could not be made (refused, unresolvable, TLS)."""
    return ConnectError(Code.UNAVAILABLE, f"cannot connect to {host}:{port}: {exc}")


class ResponseParser:
    """The response to one exchange at a time on a connection, parsed from the bytes fed in.

    The fields are read by the transports: ``status`` and ``headers`` once ``head_done``,
    the body pieces in ``chunks`` (small pieces merged, so buffering costs about the bytes
    buffered), ``complete`` once the body has ended, and ``keep_alive`` for whether the
    connection may carry another exchange. ``reset`` starts the next exchange.
    """

    def __init__(self, max_header_bytes: int, max_headers: int, transport_name: str) -> None:
        import httptools

        self._max_header_bytes = max_header_bytes
        self._max_headers = max_headers
        self._transport_name = transport_name
        self._parser = httptools.HttpResponseParser(self)
        self._parse_error = httptools.HttpParserError
        self.reset()

    def reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.chunks = ChunkBuffer()
        self._framed = False  # body length known (content-length or chunked)
        self._head_bytes = 0  # bytes received before the final response head was complete
        self._interim = False  # the message being parsed is a 1xx interim response
        self._head_error: str | None = None

    def feed(self, data: bytes) -> ConnectError | None:
        """Parse ``data``, the next bytes received; the error that ends the exchange, if any
        (the caller then closes the connection)."""
        in_head = not self.head_done
        if in_head:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except self._parse_error as exc:
            return ConnectError(Code.INTERNAL, f"invalid HTTP response: {exc}")
        # Every byte received while the head is still incomplete belongs to the head (and to
        # interim responses before it), so this bounds the head exactly, however it is split.
        if in_head and not self.head_done and self._head_bytes > self._max_header_bytes:
            self._head_error = (
                f"response head is larger than {self._max_header_bytes} bytes "
                f"({self._transport_name} max_header_bytes)"
            )
        if self._head_error is not None:
            return ConnectError(Code.INTERNAL, f"invalid HTTP response: {self._head_error}")
        return None

    def on_close(self, cause: BaseException | None, peer: str) -> ConnectError | None:
        """The connection closed (``cause`` None: cleanly); the error that ends the exchange,
        if it was not complete. A body delimited by the close is complete now."""
        if self.head_done and not self.complete and not self._framed and cause is None:
            self.complete = True
            return None
        if self.complete:
            return None
        return ConnectError(
            Code.UNAVAILABLE,
            f"{peer} closed before the response was complete: {cause or 'EOF'}",
        )

    # -- httptools callbacks -----------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= self._max_headers:
            self._head_error = (
                f"response has more than {self._max_headers} header fields "
                f"({self._transport_name} max_headers)"
            )
            return
        key = name.decode("latin-1")
        self.headers.append((key, value.decode("latin-1")))
        lower = key.lower()
        if lower == "content-length" or (
            lower == "transfer-encoding" and b"chunked" in value.lower()
        ):
            self._framed = True

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        # httptools reads any three digits. RFC 9110 (15) defines 1xx to 5xx, but a status it
        # does not know must be read by its class or as unknown, so only 000-099 is invalid.
        if not 100 <= status <= 999:
            self._head_error = f"invalid status code {status:03d}"
            return
        if 100 <= status < 200 and status != 101:
            # An interim response: the final one follows on the same connection.
            self._interim = True
            self.headers = []
            self._framed = False
            return
        self.status = status
        self.keep_alive = self._parser.should_keep_alive()
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.complete = True
