"""The gRPC and gRPC-Web protocols' wire rules, as pure functions over headers and bytes.

Specifications: gRPC over HTTP/2 (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md)
and gRPC-Web (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md). In short:

* Every RPC, unary included, is a POST whose body is a stream of envelopes (the same framing
  as Connect streams: flags, 4-byte length, message). ``content-type`` is
  ``application/grpc[+proto|+json]`` (``application/grpc-web[+...]`` for gRPC-Web).
* ``grpc-timeout`` carries the deadline: at most 8 digits and a unit (``H M S m u n``).
* ``grpc-encoding`` names the compression of flagged messages; ``grpc-accept-encoding``
  lists what the sender can decompress.
* The response is always HTTP 200. The status travels in trailers: ``grpc-status`` (the
  numeric code), ``grpc-message`` (percent-encoded UTF-8) and ``grpc-status-details-bin``
  (a base64 ``google.rpc.Status`` carrying the error details). An error before any message
  may be a *trailers-only* response: the status fields in the headers and no body.
* gRPC-Web cannot rely on HTTP trailers (browsers, HTTP/1.1), so the trailers travel as the
  last envelope of the body, flagged ``0x80``, holding HTTP/1-style header lines.

gRPC-Web is a flag of the gRPC protocol here, as in connect-go: the rules differ only in how
trailers travel. Nothing here does IO.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message
from multidict import CIMultiDict

from connectrpc._core import compression as _compression
from connectrpc._core.code import Code, code_from_http_status
from connectrpc._core.codec import CODECS, Codec
from connectrpc._core.envelope import (
    FLAG_GRPC_WEB_TRAILERS,
    MessageReader,
    encode_envelope,
    encode_message,
)
from connectrpc._core.error import ConnectError, ErrorDetail
from connectrpc._core.headers import Headers, b64decode_lenient
from connectrpc._protocol.client import ClientProtocol, RequestHead, ResponseDecoder, ResponseStart
from connectrpc._protocol.server import (
    HTTPError,
    RawHeaders,
    RequestPlan,
    ServerProtocol,
    encode_headers,
    negotiate_compression,
)
from connectrpc.method import MethodInfo

__all__ = [
    "GRPC_TIMEOUT_MAX_DIGITS",
    "GrpcClientProtocol",
    "GrpcServerProtocol",
    "decode_grpc_message",
    "decode_status_details",
    "decode_trailers_frame",
    "encode_grpc_message",
    "encode_status_details",
    "encode_timeout",
    "encode_trailers_frame",
    "error_from_trailers",
    "grpc_content_type",
    "parse_grpc_content_type",
    "parse_timeout",
    "status_trailers",
]

GRPC_TIMEOUT_MAX_DIGITS = 8

_TIMEOUT_UNITS = {
    "H": 3600.0,
    "M": 60.0,
    "S": 1.0,
    "m": 1e-3,
    "u": 1e-6,
    "n": 1e-9,
}
_TIMEOUT = re.compile(r"([0-9]{1,8})([HMSmun])")


def parse_timeout(value: str) -> float:
    """Seconds from a ``grpc-timeout`` value; raises ``invalid_argument`` if malformed.

    The grammar is 1 to 8 ASCII digits and one unit letter; ``re``'s ``[0-9]`` (not ``\\d``)
    keeps other scripts' digits out.
    """
    match = _TIMEOUT.fullmatch(value)
    if match is None:
        raise ConnectError(
            Code.INVALID_ARGUMENT,
            f"protocol error: invalid grpc-timeout {value!r}: expected 1 to 8 digits and a "
            "unit (H, M, S, m, u or n)",
        )
    return int(match.group(1)) * _TIMEOUT_UNITS[match.group(2)]


def encode_timeout(seconds: float) -> str:
    """``grpc-timeout`` for a timeout: the finest unit that fits in 8 digits, rounded up so
    the deadline is never shortened."""
    # Whole nanoseconds first (less a hair of float noise: 0.25 s is 250,000,000 ns, not
    # 250,000,001), then integer ceilings, so no unit rounds twice.
    nanos = max(math.ceil(seconds * 1e9 - 1e-3), 0)
    for unit, scale in (("n", 1), ("u", 10**3), ("m", 10**6), ("S", 10**9), ("M", 60 * 10**9)):
        count = -(-nanos // scale)
        if count < 10**GRPC_TIMEOUT_MAX_DIGITS:
            return f"{count}{unit}"
    return f"{min(-(-nanos // (3600 * 10**9)), 10**GRPC_TIMEOUT_MAX_DIGITS - 1)}H"


# --- content types -------------------------------------------------------------------------


def grpc_content_type(codec: str, web: bool) -> str:
    base = "application/grpc-web" if web else "application/grpc"
    return f"{base}+{codec}"


def parse_grpc_content_type(content_type: str) -> tuple[bool, str] | None:
    """``(web, codec)`` for a gRPC or gRPC-Web content type, or ``None`` for anything else.

    A bare ``application/grpc`` means protobuf. ``application/grpc-web-text`` (base64 bodies)
    is not served.
    """
    media = content_type.split(";", 1)[0].strip().lower()
    for prefix, web in (("application/grpc-web", True), ("application/grpc", False)):
        if media == prefix:
            return web, "proto"
        if media.startswith(prefix + "+"):
            return web, media[len(prefix) + 1 :]
    return None


# --- grpc-message ---------------------------------------------------------------------------

_UNRESERVED = frozenset(range(0x20, 0x7F)) - {ord("%")}


def encode_grpc_message(message: str) -> str:
    """Percent-encode a status message: UTF-8, with bytes outside printable ASCII (and ``%``)
    as ``%XX``, as the spec requires."""
    raw = message.encode("utf-8")
    if all(b in _UNRESERVED for b in raw):
        return message
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in raw)


def decode_grpc_message(value: str) -> str:
    """Undo ``encode_grpc_message``; invalid escapes are kept as they are, as the spec asks."""
    if "%" not in value:
        return value
    raw = value.encode("latin-1", "replace")
    out = bytearray()
    i = 0
    while i < len(raw):
        b = raw[i]
        if b == 0x25 and _is_hex(raw[i + 1 : i + 3]):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(b)
            i += 1
    return out.decode("utf-8", "replace")


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair)


# --- grpc-status-details-bin -----------------------------------------------------------------


@cache
def _status_class() -> type[Message]:
    """``google.rpc.Status``, built in a private descriptor pool: no dependency on
    googleapis-common-protos, and no clash with a copy the application may register."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(any_pb2.DESCRIPTOR.serialized_pb))
    f = descriptor_pb2.FieldDescriptorProto
    status = descriptor_pb2.DescriptorProto(
        name="Status",
        field=[
            f(name="code", number=1, type=f.TYPE_INT32, label=f.LABEL_OPTIONAL),
            f(name="message", number=2, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL),
            f(
                name="details",
                number=3,
                type=f.TYPE_MESSAGE,
                label=f.LABEL_REPEATED,
                type_name=".google.protobuf.Any",
            ),
        ],
    )
    pool.Add(
        descriptor_pb2.FileDescriptorProto(
            name="google/rpc/status.proto",
            package="google.rpc",
            dependency=["google/protobuf/any.proto"],
            message_type=[status],
            syntax="proto3",
        )
    )
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))


def encode_status_details(error: ConnectError) -> str:
    """``grpc-status-details-bin``: the status as a ``google.rpc.Status``, in base64 without
    padding (binary headers are sent unpadded; readers accept both)."""
    status: Any = _status_class()(code=error.code.grpc_value, message=error.message)
    for detail in error.details:
        packed = status.details.add()
        packed.type_url = "type.googleapis.com/" + detail.type_name
        packed.value = detail.value
    return base64.b64encode(status.SerializeToString()).decode("ascii").rstrip("=")


def decode_status_details(value: str) -> list[ErrorDetail]:
    """The details in a ``grpc-status-details-bin`` value; raises ``ValueError`` if it is not
    a base64 ``google.rpc.Status``."""
    value = value.strip()
    try:
        raw = b64decode_lenient(value)
    except binascii.Error as exc:
        raise ValueError(f"grpc-status-details-bin is not base64: {exc}") from exc
    status: Any = _status_class()()
    try:
        status.ParseFromString(raw)
    except DecodeError as exc:
        raise ValueError(f"grpc-status-details-bin is not a google.rpc.Status: {exc}") from exc
    return [ErrorDetail(d.type_url.rsplit("/", 1)[-1], d.value) for d in status.details]


# --- status trailers ------------------------------------------------------------------------


def status_trailers(error: ConnectError | None) -> list[tuple[str, str]]:
    """The ``grpc-status`` fields for an outcome (``None``: success)."""
    if error is None:
        return [("grpc-status", "0")]
    out = [("grpc-status", str(error.code.grpc_value))]
    if error.message:
        out.append(("grpc-message", encode_grpc_message(error.message)))
    if error.details:
        out.append(("grpc-status-details-bin", encode_status_details(error)))
    return out


def error_from_trailers(trailers: Headers) -> ConnectError | None:
    """The outcome a peer reported in its status fields: ``None`` for ``grpc-status: 0``.

    Raises ``ConnectError`` (``internal``) when the status is missing or malformed.
    """
    raw = trailers.get("grpc-status")
    if raw is None:
        raise ConnectError(Code.INTERNAL, "protocol error: no grpc-status in the trailers")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        raise ConnectError(Code.INTERNAL, f"protocol error: invalid grpc-status {raw!r}")
    value = int(raw)
    if value == 0:
        return None
    # A status this side does not know is UNKNOWN, as the gRPC spec says.
    code = Code.from_grpc_value(value) or Code.UNKNOWN
    message = decode_grpc_message(trailers.get("grpc-message", ""))
    details: list[ErrorDetail] = []
    bin_value = trailers.get("grpc-status-details-bin")
    if bin_value is not None:
        try:
            details = decode_status_details(bin_value)
        except ValueError as exc:
            raise ConnectError(Code.INTERNAL, f"protocol error: {exc}") from exc
    return ConnectError(code, message, details=details, wire=True)


# --- gRPC-Web trailers frame ------------------------------------------------------------------


def encode_trailers_frame(trailers: Iterable[tuple[str, str]]) -> bytes:
    """The payload of a gRPC-Web trailers envelope: HTTP/1-style lines, lower-case names."""
    return "".join(f"{k.lower()}: {v}\r\n" for k, v in trailers).encode("latin-1")


def decode_trailers_frame(data: bytes) -> list[tuple[str, str]]:
    """The fields of a gRPC-Web trailers envelope; raises ``ValueError`` if malformed."""
    out: list[tuple[str, str]] = []
    for line in data.decode("latin-1").split("\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"invalid gRPC-Web trailer line {line!r}")
        out.append((name.strip().lower(), value.strip()))
    return out


# --- server side -----------------------------------------------------------------------------


class GrpcServerProtocol(ServerProtocol):
    """gRPC (``web=False``) or gRPC-Web (``web=True``), server side.

    Every call is enveloped both ways. Protocol errors in a request head (a malformed
    ``grpc-timeout``, an unknown ``grpc-encoding``, an unknown method) are answered as RPC
    statuses, not HTTP errors, since gRPC clients read only the status. Errors go out as
    headers followed by trailers even before any message: strict clients (grpc-go) want the
    status in a HEADERS frame that ends the stream, which ASGI cannot ask for in a
    trailers-only response. gRPC proper needs HTTP trailers; under an ASGI server that cannot
    send them for the request (HTTP/1.1 everywhere, for instance) the call is refused with a
    status saying so, in a trailers-only response, which needs none.
    """

    def __init__(self, *, web: bool) -> None:
        self._web = web
        self.name = "grpc-web" if web else "grpc"

    def serves(self, media_type: str) -> bool:
        parsed = parse_grpc_content_type(media_type)
        return parsed is not None and parsed[0] == self._web and parsed[1] in CODECS

    def content_types(self, stream: bool) -> list[str]:
        return [grpc_content_type(c, self._web) for c in CODECS]

    def plan(
        self,
        method: MethodInfo[Any, Any] | None,
        http_method: str,
        headers: Mapping[str, str],
        query_string: bytes,
        enabled_compressions: tuple[str, ...],
        trailers_supported: bool,
    ) -> RequestPlan:
        if http_method != "POST":
            raise HTTPError(405, headers=[("allow", "POST")])
        content_type = headers.get("content-type", "")
        parsed = parse_grpc_content_type(content_type)
        assert parsed is not None  # serves() chose this protocol
        codec = CODECS[parsed[1]]
        error: ConnectError | None = None
        timeout: float | None = None
        timeout_header = headers.get("grpc-timeout")
        if timeout_header is not None:
            try:
                timeout = parse_timeout(timeout_header)
            except ConnectError as exc:
                error = exc
        request_compression = None
        try:
            request_compression = _compression.for_request(
                headers.get("grpc-encoding"), enabled_compressions
            )
        except ConnectError as exc:
            error = error or exc
        if not self._web and not trailers_supported:
            error = ConnectError(
                Code.UNAVAILABLE,
                "this server cannot send HTTP trailers on this connection, and gRPC needs "
                "them: call it over HTTP/2 under an ASGI server with the "
                "http.response.trailers extension (hypercorn), or use gRPC-Web or Connect",
            )
        response_compression = negotiate_compression(
            headers.get("grpc-accept-encoding"), request_compression, enabled_compressions
        )
        return RequestPlan(
            codec,
            True,
            request_compression,
            response_compression,
            timeout,
            web=self._web,
            content_type=content_type.split(";", 1)[0].strip().lower(),
            error=error,
            accept_compression=enabled_compressions,
            http_trailers=trailers_supported,
        )

    def whole_error(self, plan: RequestPlan) -> bool:
        return not plan.web and not plan.http_trailers

    def _head(self, plan: RequestPlan, headers: CIMultiDict[str]) -> list[tuple[str, str]]:
        out = [("content-type", plan.content_type)]
        if plan.response_compression is not None:
            out.append(("grpc-encoding", plan.response_compression.name))
        if plan.accept_compression:
            out.append(("grpc-accept-encoding", ",".join(plan.accept_compression)))
        out.extend(headers.items())
        return out

    @staticmethod
    def _status(error: ConnectError | None, trailers: CIMultiDict[str]) -> list[tuple[str, str]]:
        out = status_trailers(error)
        out.extend(trailers.items())
        if error is not None:
            out.extend(error.metadata.items())
        return out

    def error_response(
        self,
        plan: RequestPlan,
        error: ConnectError,
        headers: CIMultiDict[str],
        trailers: CIMultiDict[str],
    ) -> tuple[int, RawHeaders, bytes]:
        # Trailers-only: the status fields go out as headers, with no body.
        fields = self._head(plan, headers) + self._status(error, trailers)
        return 200, encode_headers(fields), b""

    def stream_head(self, plan: RequestPlan, headers: CIMultiDict[str]) -> tuple[RawHeaders, bool]:
        return encode_headers(self._head(plan, headers)), not plan.web

    def end_stream(
        self, plan: RequestPlan, error: ConnectError | None, trailers: CIMultiDict[str]
    ) -> tuple[bytes, RawHeaders | None]:
        fields = self._status(error, trailers)
        if plan.web:
            encode_headers(fields)  # the same checks as HTTP trailers get
            return encode_envelope(FLAG_GRPC_WEB_TRAILERS, encode_trailers_frame(fields)), None
        return b"", encode_headers(fields)


# --- client side -------------------------------------------------------------------------------

_STATUS_FIELDS = frozenset({"grpc-status", "grpc-message", "grpc-status-details-bin"})


def _visible(fields: Iterable[tuple[str, str]]) -> CIMultiDict[str]:
    """Trailers as the caller sees them: without the protocol's own status fields."""
    return CIMultiDict((k, v) for k, v in fields if k.lower() not in _STATUS_FIELDS)


class GrpcWebResponseDecoder(ResponseDecoder):
    """Turns a gRPC-Web response body into messages, then the status in its trailers frame
    (or, for gRPC proper, the HTTP trailers handed to ``finish``)."""

    def __init__(
        self,
        headers: Headers,
        limit: int | None,
        web: bool,
        visible: CIMultiDict[str] | None = None,
    ) -> None:
        self._web = web
        self._reader = MessageReader(
            limit,
            _compression.for_response(headers.get("grpc-encoding"), "grpc-encoding"),
            special=FLAG_GRPC_WEB_TRAILERS if web else 0,
            malformed=Code.INTERNAL,
            encoding_header="grpc-encoding",
        )
        self._ended = False
        self._seen_body = False
        # A status in the headers is a trailers-only response, but only if no body follows:
        # a body's own trailers win (as the gRPC-Web spec's readers do). ``visible`` is the
        # caller's view of the headers, emptied if they turn out to be the trailers.
        self._header_status = list(headers.items()) if "grpc-status" in headers else None
        self._visible = visible
        self.error: ConnectError | None = None
        self.trailers: CIMultiDict[str] = CIMultiDict()

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        if data:
            self._seen_body = True
        for flags, payload in self._reader.feed(data):
            if self._ended:
                raise ConnectError(
                    Code.INTERNAL, "protocol error: received data after the trailers"
                )
            if flags & FLAG_GRPC_WEB_TRAILERS:
                self._ended = True
                try:
                    fields = decode_trailers_frame(payload)
                except ValueError as exc:
                    raise ConnectError(Code.INTERNAL, f"protocol error: {exc}") from exc
                self._set_status(fields)
            else:
                out.append(payload)
        return out

    def _set_status(self, fields: list[tuple[str, str]]) -> None:
        self.error = error_from_trailers(CIMultiDict(fields))
        self.trailers = _visible(fields)
        if self.error is not None:
            self.error.metadata.extend(self.trailers)

    def finish(self, trailers: Headers | None = None) -> list[bytes]:
        incomplete = self._reader.incomplete_error()
        if incomplete is not None:
            raise incomplete
        if not self._ended:
            if not self._web and trailers:
                # Real HTTP trailers carry the status, even after headers that had one.
                self._ended = True
                self._set_status(list(trailers.items()))
                return []
            if self._header_status is not None and not self._seen_body:
                self._ended = True
                self._set_status(self._header_status)
                if self._visible is not None:
                    self._visible.clear()  # they were the trailers
                return []
            if self._web or trailers is None:
                raise ConnectError(
                    Code.INTERNAL, "protocol error: the response ended without its trailers"
                )
            self._ended = True
            self._set_status(list(trailers.items()))
        return []


class GrpcClientProtocol(ClientProtocol):
    """gRPC-Web (``web=True``) or gRPC, client side: every call enveloped, the status read
    from the trailers (a body frame for gRPC-Web, HTTP trailers for gRPC), or from the
    headers of a trailers-only response."""

    def __init__(
        self,
        codec: Codec,
        accept_compression: tuple[str, ...],
        user_agent: str,
        read_max_bytes: int | None,
        *,
        web: bool,
    ) -> None:
        super().__init__(codec, accept_compression, user_agent, read_max_bytes)
        self._web = web
        self._content_type = grpc_content_type(codec.name, web)

    def request_head(
        self,
        procedure: str,
        *,
        stream: bool,
        timeout: float | None,
        send_compression: _compression.Compression | None,
        get_message: bytes | None = None,
    ) -> RequestHead:
        if get_message is not None:
            raise ValueError("GET requests are a Connect protocol feature")
        headers: CIMultiDict[str] = CIMultiDict()
        headers["content-type"] = self._content_type
        headers["user-agent"] = self._user_agent
        if self._web:
            headers["x-user-agent"] = self._user_agent  # browsers may not set user-agent
        else:
            headers["te"] = "trailers"
        if send_compression is not None:
            headers["grpc-encoding"] = send_compression.name
        if self._accept:
            headers["grpc-accept-encoding"] = self._accept
        if timeout is not None:
            headers["grpc-timeout"] = encode_timeout(timeout)
        return RequestHead("POST", procedure, headers)

    def encode_unary(
        self, data: bytes, compression: _compression.Compression | None
    ) -> tuple[bytes, bool]:
        return encode_message(data, compression), compression is not None

    def encode_stream_message(
        self, data: bytes, compression: _compression.Compression | None
    ) -> bytes:
        return encode_message(data, compression)

    def start_response(self, status: int, headers: Headers, *, stream: bool) -> ResponseStart:
        visible = CIMultiDict(headers)
        if status != 200:
            return ResponseStart(
                visible,
                error=ConnectError(
                    code_from_http_status(status), f"HTTP status {status}", wire=True
                ),
            )
        content_type = headers.get("content-type", "")
        parsed = parse_grpc_content_type(content_type)
        if parsed is None or parsed[0] != self._web:
            return ResponseStart(
                visible,
                error=ConnectError(
                    Code.UNKNOWN,
                    f"invalid content-type {content_type!r}; expecting {self._content_type!r}",
                ),
            )
        if parsed[1] != self._codec.name:
            return ResponseStart(
                visible,
                error=ConnectError(
                    Code.INTERNAL,
                    f"invalid content-type {content_type!r}; expecting {self._content_type!r}",
                ),
            )
        return ResponseStart(
            visible, decoder=GrpcWebResponseDecoder(headers, self._limit, self._web, visible)
        )

    def decode_error_body(
        self, status: int, headers: Headers, body: bytes, limit: int | None
    ) -> ConnectError:
        raise AssertionError("gRPC responses carry no error body")  # start_response never asks
