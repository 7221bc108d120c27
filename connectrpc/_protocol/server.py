"""What a wire protocol must do for the server, free of IO: the seam between the ASGI layer
and the Connect, gRPC and gRPC-Web rules.

The app asks each protocol whether it serves a request's content type (as connect-go's
handler does), lets that protocol *plan* the request (codec, compression, deadline, framing)
and then builds every response head, message frame and end of stream through it. Handler
dispatch, deadlines, errors and stream shapes stay in the IO layer and know no protocol.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from multidict import CIMultiDict

from connectrpc._core import compression as _compression
from connectrpc._core.codec import Codec
from connectrpc._core.error import ConnectError
from connectrpc.method import MethodInfo

__all__ = [
    "HTTPError",
    "InvalidHeaderError",
    "RawHeaders",
    "RequestPlan",
    "ServerProtocol",
    "encode_headers",
    "negotiate_compression",
]

RawHeaders = list[tuple[bytes, bytes]]


class HTTPError(Exception):
    """A request rejected before it reaches the handler, with a plain HTTP answer.

    ``error`` (when set) is sent as a Connect error JSON body; otherwise the body is empty.
    """

    def __init__(
        self,
        status: int,
        error: ConnectError | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(status)
        self.status = status
        self.error = error
        self.headers = list(headers)


@dataclass(frozen=True)
class RequestPlan:
    """How to read a request and write its response, as its protocol decided."""

    codec: Codec
    stream: bool
    """Whether request and response bodies are streams of envelopes (Connect streams and
    every gRPC call), rather than one bare message (Connect unary)."""
    request_compression: _compression.Compression | None
    response_compression: _compression.Compression | None
    timeout: float | None
    get_message: bytes | None = None
    """For a Connect GET: the message from the query string (still compressed if so)."""
    web: bool = False
    """gRPC-Web: trailers travel in the body."""
    content_type: str = ""
    """The response's content type, where the protocol echoes the request's."""
    error: ConnectError | None = None
    """A protocol error to answer at once (gRPC reports these as statuses, not HTTP errors)."""
    accept_compression: tuple[str, ...] = ()
    """The compressions the server accepts, where the protocol advertises them."""
    http_trailers: bool = False
    """Whether the ASGI server can send HTTP trailers for this request."""


def negotiate_compression(
    accept: str | None,
    request_compression: _compression.Compression | None,
    enabled: tuple[str, ...],
) -> _compression.Compression | None:
    """The compression for the response: the request's own if it used one, else the first
    name in the client's ``accept`` list that the server has enabled."""
    if request_compression is not None:
        return request_compression
    if not accept:
        return None
    for token in accept.split(","):
        name = token.split(";", 1)[0].strip().lower()
        if name in enabled:
            return _compression.get(name)
    return None


class InvalidHeaderError(ValueError):
    """A header that cannot go on the wire (set by a handler: a server bug, not the client's)."""


# RFC 9110 section 5.1 (field names are tokens) and 5.5 (field values: visible ASCII,
# space, tab and obs-text, which is latin-1's upper half; no CR, LF or other controls).
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def encode_headers(headers: Iterable[tuple[str, str]]) -> RawHeaders:
    """Header fields as ASGI wants them (lower-case latin-1 bytes), each checked first."""
    out: RawHeaders = []
    for k, v in headers:
        if _FIELD_NAME.fullmatch(k) is None:
            raise InvalidHeaderError(f"invalid header name {k!r}")
        if _FIELD_VALUE.fullmatch(v) is None:
            raise InvalidHeaderError(
                f"invalid value for header {k!r}: {v!r} (HTTP allows latin-1 text without "
                "control characters; encode other text, e.g. percent-encoding or base64)"
            )
        out.append((k.lower().encode("latin-1"), v.encode("latin-1")))
    return out


class ServerProtocol(abc.ABC):
    """One wire protocol, server side."""

    name: str
    """``"connect"``, ``"grpc"`` or ``"grpc-web"``: what interceptors and handlers see."""

    @abc.abstractmethod
    def serves(self, media_type: str) -> bool:
        """Whether this protocol serves requests of ``media_type`` (lower-case, no params)."""

    @abc.abstractmethod
    def content_types(self, stream: bool) -> list[str]:
        """The content types it accepts for a method of this shape (for a 415's
        ``accept-post``)."""

    @abc.abstractmethod
    def plan(
        self,
        method: MethodInfo[Any, Any] | None,
        http_method: str,
        headers: Mapping[str, str],
        query_string: bytes,
        enabled_compressions: tuple[str, ...],
        trailers_supported: bool,
    ) -> RequestPlan:
        """Validate a request head; raise ``HTTPError`` to answer it with a plain HTTP
        error, or set ``RequestPlan.error`` to answer it with an RPC error. ``method`` is
        ``None`` when no handler serves the path (the app then answers ``unimplemented`` in
        the protocol's own form)."""

    @abc.abstractmethod
    def whole_error(self, plan: RequestPlan) -> bool:
        """Whether an error before any response message is answered by ``error_response``
        (a whole response), rather than as a response head and an end of stream."""

    def unary_head(
        self,
        plan: RequestPlan,
        compressed: bool,
        length: int,
        headers: CIMultiDict[str],
        trailers: CIMultiDict[str],
    ) -> RawHeaders:
        """Headers of a successful bare (non-enveloped) unary response."""
        raise NotImplementedError(f"{type(self).__name__} has no bare unary responses")

    @abc.abstractmethod
    def error_response(
        self,
        plan: RequestPlan,
        error: ConnectError,
        headers: CIMultiDict[str],
        trailers: CIMultiDict[str],
    ) -> tuple[int, RawHeaders, bytes]:
        """A whole error response (status, headers, body), when nothing was sent yet."""

    @abc.abstractmethod
    def stream_head(self, plan: RequestPlan, headers: CIMultiDict[str]) -> tuple[RawHeaders, bool]:
        """Headers of an enveloped response, and whether HTTP trailers will follow."""

    @abc.abstractmethod
    def end_stream(
        self, plan: RequestPlan, error: ConnectError | None, trailers: CIMultiDict[str]
    ) -> tuple[bytes, RawHeaders | None]:
        """The end of an enveloped response: a last body chunk, and HTTP trailers if the
        protocol sends them (``stream_head`` said so)."""
