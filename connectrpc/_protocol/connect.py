"""The Connect protocol's wire rules, as pure functions over headers and bytes.

Specification: https://connectrpc.com/docs/protocol. In short:

* Unary RPCs POST the bare (possibly compressed) message with ``content-type:
  application/proto`` or ``application/json`` and ``connect-protocol-version: 1``. The response
  is the bare message; response trailers travel as headers prefixed ``trailer-``. Errors use a
  non-200 status and a JSON body ``{"code", "message", "details"}``.
* Unary methods with no side effects may also be called with GET, the message in the query.
* Streaming RPCs use ``application/connect+proto`` / ``+json`` and enveloped messages; the
  response always has status 200 and ends with an end-of-stream envelope (flag ``0x02``)
  holding ``{"error": ..., "metadata": ...}``.
* ``connect-timeout-ms`` carries the deadline; ``content-encoding`` (unary) and
  ``connect-content-encoding`` (streams) name the compression.

Nothing here does IO: the client and server layers feed bytes in and take bytes out.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from multidict import CIMultiDict

from connectrpc._core import compression as _compression
from connectrpc._core.buffer import ChunkBuffer
from connectrpc._core.code import Code, code_from_http_status
from connectrpc._core.codec import CODECS
from connectrpc._core.envelope import (
    FLAG_END_STREAM,
    MessageReader,
    encode_envelope,
    encode_message,
)
from connectrpc._core.error import ConnectError, ErrorDetail
from connectrpc._core.headers import Headers, b64decode_lenient
from connectrpc._protocol.client import ClientProtocol, RequestHead, ResponseDecoder, ResponseStart
from connectrpc._protocol.server import (
    HTTPError,
    InvalidHeaderError,
    RawHeaders,
    RequestPlan,
    ServerProtocol,
    negotiate_compression,
)
from connectrpc._protocol.server import encode_headers as _encode_headers
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType

__all__ = [
    "PROTOCOL_VERSION",
    "UNARY_TRAILER_PREFIX",
    "ConnectClientProtocol",
    "ConnectServerProtocol",
    "ConnectStreamDecoder",
    "ConnectUnaryDecoder",
    "HTTPError",
    "InvalidHeaderError",
    "RequestPlan",
    "decode_error_json",
    "encode_end_stream",
    "encode_error_json",
    "encode_timeout",
    "get_query",
    "negotiate_compression",
    "parse_timeout",
    "plan_request",
    "split_unary_trailers",
    "stream_content_type",
    "stream_response_head",
    "unary_content_type",
    "unary_error_response",
    "unary_response_head",
    "validate_stream_response",
    "validate_unary_response",
]

PROTOCOL_VERSION = "1"
UNARY_TRAILER_PREFIX = "trailer-"
_MAX_TIMEOUT_MS = 9_999_999_999  # the header allows at most 10 digits


def unary_content_type(codec: str) -> str:
    return f"application/{codec}"


def stream_content_type(codec: str) -> str:
    return f"application/connect+{codec}"


def encode_timeout(seconds: float) -> str:
    """``connect-timeout-ms`` for a timeout, rounded up so it never shortens the deadline."""
    return str(min(_MAX_TIMEOUT_MS, max(1, math.ceil(seconds * 1000))))


def parse_timeout(value: str) -> float:
    """Seconds from a ``connect-timeout-ms`` value; raises ``invalid_argument`` if malformed."""
    # str.isdigit alone also accepts non-ASCII digits ("²", "٣"), which int() then rejects
    # or reads; the header's grammar is 1 to 10 ASCII digits.
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise ConnectError(
            Code.INVALID_ARGUMENT,
            f"invalid connect-timeout-ms {value!r}: expected 1 to 10 ASCII digits",
        )
    return int(value) / 1000


def _codec_from_content_type(content_type: str, prefix: str) -> str | None:
    """The codec name in a content type with the given prefix, ignoring parameters."""
    media = content_type.split(";", 1)[0].strip().lower()
    if not media.startswith(prefix):
        return None
    return media[len(prefix) :]


def _is_json_media(content_type: str) -> bool:
    return _codec_from_content_type(content_type, "application/") == "json"


def get_query(codec: str, message: bytes, compression: str | None) -> str:
    """The query string of a unary GET request (without the ``?``).

    Binary payloads (protobuf, or anything compressed) are sent as unpadded URL-safe
    base64 with ``base64=1``; uncompressed JSON is percent-encoded as-is.
    """
    params = [("connect", "v" + PROTOCOL_VERSION), ("encoding", codec)]
    if compression is not None:
        params.append(("compression", compression))
    if codec == "json" and compression is None:
        params.append(("message", message.decode()))
    else:
        params.append(("base64", "1"))
        params.append(("message", base64.urlsafe_b64encode(message).rstrip(b"=").decode()))
    return urllib.parse.urlencode(params, quote_via=urllib.parse.quote)


def split_unary_trailers(headers: Headers) -> tuple[CIMultiDict[str], CIMultiDict[str]]:
    """Separate a unary response's headers from its ``trailer-``-prefixed trailers."""
    plain: CIMultiDict[str] = CIMultiDict()
    trailers: CIMultiDict[str] = CIMultiDict()
    n = len(UNARY_TRAILER_PREFIX)
    for key, value in headers.items():
        if key[:n].lower() == UNARY_TRAILER_PREFIX:
            trailers.add(key[n:], value)
        else:
            plain.add(key, value)
    return plain, trailers


# --- errors --------------------------------------------------------------------------------


def _error_from_obj(obj: Any, http_status: int | None) -> ConnectError:
    """Build an error from the decoded JSON object of a Connect error."""
    if not isinstance(obj, dict):
        raise ValueError("error is not a JSON object")
    code_name = obj.get("code")
    if code_name is not None and not isinstance(code_name, str):
        raise ValueError("error code is not a string")
    # A missing or unrecognized code falls back to what the HTTP status implies.
    code = Code.from_wire(code_name) if code_name else None
    if code is None:
        code = code_from_http_status(http_status) if http_status is not None else Code.UNKNOWN
    message = obj.get("message", "")
    if not isinstance(message, str):
        raise ValueError("error message is not a string")
    details: list[ErrorDetail] = []
    raw_details = obj.get("details", [])
    if not isinstance(raw_details, list):
        raise ValueError("error details is not a list")
    for raw in raw_details:
        if not isinstance(raw, dict):
            raise ValueError("error detail is not an object")
        type_name, value = raw.get("type"), raw.get("value", "")
        if not isinstance(type_name, str) or not isinstance(value, str):
            raise ValueError("error detail needs string 'type' and 'value'")
        try:
            data = b64decode_lenient(value)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"error detail value is not base64: {exc}") from exc
        details.append(ErrorDetail(type_name.rsplit("/", 1)[-1], data, raw.get("debug")))
    return ConnectError(code, message, details=details, wire=True)


def decode_error_json(body: bytes, http_status: int) -> ConnectError:
    """The error carried by a unary Connect error response.

    A body that is not a valid Connect error (a proxy's HTML page, say) yields the code
    implied by the HTTP status, as the protocol requires.
    """
    try:
        return _error_from_obj(json.loads(body), http_status)
    except (ValueError, RecursionError):
        code = code_from_http_status(http_status)
        return ConnectError(code, f"HTTP status {http_status}", wire=True)


def _error_obj(error: ConnectError) -> dict[str, Any]:
    obj: dict[str, Any] = {"code": error.code.value}
    if error.message:
        obj["message"] = error.message
    if error.details:
        obj["details"] = [
            {"type": d.type_name, "value": base64.b64encode(d.value).decode().rstrip("=")}
            for d in error.details
        ]
    return obj


def encode_error_json(error: ConnectError) -> bytes:
    """The JSON body of a unary Connect error response."""
    return json.dumps(_error_obj(error), separators=(",", ":")).encode()


def _metadata_obj(trailers: Headers) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in trailers.items():
        out.setdefault(key.lower(), []).append(value)
    return out


def encode_end_stream(error: ConnectError | None, trailers: Headers) -> bytes:
    """The payload of a streaming response's end-of-stream envelope."""
    obj: dict[str, Any] = {}
    if error is not None:
        obj["error"] = _error_obj(error)
    if trailers:
        obj["metadata"] = _metadata_obj(trailers)
    return json.dumps(obj, separators=(",", ":")).encode()


def _decode_end_stream(data: bytes) -> tuple[ConnectError | None, CIMultiDict[str]]:
    try:
        obj = json.loads(data)
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        trailers: CIMultiDict[str] = CIMultiDict()
        metadata = obj.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ValueError("metadata is not an object")
        for key, values in metadata.items():
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ValueError(f"metadata {key!r} is not a list of strings")
            for v in values:
                trailers.add(key, v)
        raw_error = obj.get("error")
        error = None if raw_error is None else _error_from_obj(raw_error, None)
    except (ValueError, RecursionError) as exc:
        raise ConnectError(
            Code.INTERNAL, f"protocol error: invalid end-of-stream message: {exc}"
        ) from exc
    if error is not None:
        error.metadata.extend(trailers)
    return error, trailers


# --- client-side response validation ----------------------------------------------------


def validate_unary_response(
    codec: str, status: int, headers: Headers
) -> ConnectError | bool | None:
    """Check a unary response head.

    Returns ``None`` when the body is the response message, ``True`` when the body is a
    Connect error JSON to decode with ``decode_error_json``, or the error to report when
    the response is not a Connect response at all.
    """
    content_type = headers.get("content-type", "")
    if status != 200:
        if _is_json_media(content_type):
            return True
        return ConnectError(code_from_http_status(status), f"HTTP status {status}", wire=True)
    got = _codec_from_content_type(content_type, "application/")
    if got is None:
        return ConnectError(
            Code.UNKNOWN,
            f"invalid content-type {content_type!r}; expecting {unary_content_type(codec)!r}",
        )
    if got != codec:
        return ConnectError(
            Code.INTERNAL,
            f"invalid content-type {content_type!r}; expecting {unary_content_type(codec)!r}",
        )
    return None


def validate_stream_response(codec: str, status: int, headers: Headers) -> ConnectError | None:
    """Check a streaming response head; the error to report, or ``None`` if it is valid."""
    if status != 200:
        return ConnectError(code_from_http_status(status), f"HTTP status {status}", wire=True)
    content_type = headers.get("content-type", "")
    got = _codec_from_content_type(content_type, "application/connect+")
    if got is None:
        return ConnectError(
            Code.UNKNOWN,
            f"invalid content-type {content_type!r}; expecting {stream_content_type(codec)!r}",
        )
    if got != codec:
        return ConnectError(
            Code.INTERNAL,
            f"invalid content-type {content_type!r}; expecting {stream_content_type(codec)!r}",
        )
    return None


class ConnectUnaryDecoder(ResponseDecoder):
    """Collects a unary response body and yields the one message at the end."""

    def __init__(self, headers: Headers, limit: int | None) -> None:
        self._comp = _compression.for_response(headers.get("content-encoding"), "content-encoding")
        self._limit = limit
        self._body = ChunkBuffer()
        self.error: ConnectError | None = None
        self.trailers: CIMultiDict[str] = CIMultiDict()

    def feed(self, data: bytes) -> list[bytes]:
        self._body.append(data)
        limit = _compression.buffered_limit(self._limit, self._comp is not None)
        if limit is not None and self._body.size > limit:
            self._body.clear()
            raise ConnectError(
                Code.RESOURCE_EXHAUSTED,
                f"message size is larger than the configured limit of {self._limit} bytes",
            )
        return []

    def finish(self, trailers: Headers | None = None) -> list[bytes]:
        body = self._body.take()
        return [_compression.decompress_message(self._comp, body, self._limit, Code.INTERNAL)]


class ConnectStreamDecoder(ResponseDecoder):
    """Turns a streaming response body into messages, then the end-of-stream status."""

    def __init__(self, headers: Headers, limit: int | None) -> None:
        self._comp = _compression.for_response(
            headers.get("connect-content-encoding"), "connect-content-encoding"
        )
        self._reader = MessageReader(
            limit,
            self._comp,
            special=FLAG_END_STREAM,
            malformed=Code.INTERNAL,
            encoding_header="connect-content-encoding",
        )
        self._ended = False
        self.error: ConnectError | None = None
        self.trailers: CIMultiDict[str] = CIMultiDict()

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        for flags, payload in self._reader.feed(data):
            if self._ended:
                raise ConnectError(
                    Code.INTERNAL, "protocol error: received data after end-of-stream message"
                )
            if flags & FLAG_END_STREAM:
                self._ended = True
                self.error, self.trailers = _decode_end_stream(payload)
            else:
                out.append(payload)
        return out

    def finish(self, trailers: Headers | None = None) -> list[bytes]:
        incomplete = self._reader.incomplete_error()
        if incomplete is not None:
            raise incomplete
        if not self._ended:
            raise ConnectError(
                Code.INTERNAL, "protocol error: stream ended without an end-of-stream message"
            )
        return []


def merge_headers(base: CIMultiDict[str], extra: Iterable[tuple[str, str]]) -> CIMultiDict[str]:
    """``base`` with caller headers added; a caller header replaces a default of that name."""
    extra = list(extra)
    for key in {k.lower() for k, _ in extra}:
        base.popall(key, None)
    base.extend(extra)
    return base


# --- client protocol object ---------------------------------------------------------------


class ConnectClientProtocol(ClientProtocol):
    """The Connect protocol for clients: request heads and response interpretation."""

    def request_head(
        self,
        procedure: str,
        *,
        stream: bool,
        timeout: float | None,
        send_compression: _compression.Compression | None,
        get_message: bytes | None = None,
    ) -> RequestHead:
        headers: CIMultiDict[str] = CIMultiDict()
        headers["user-agent"] = self._user_agent
        codec = self.codec.name
        if get_message is not None:
            path = (
                procedure
                + "?"
                + get_query(codec, get_message, send_compression.name if send_compression else None)
            )
            if self._accept:
                headers["accept-encoding"] = self._accept
            if timeout is not None:
                headers["connect-timeout-ms"] = encode_timeout(timeout)
            return RequestHead("GET", path, headers)
        headers["connect-protocol-version"] = PROTOCOL_VERSION
        if stream:
            headers["content-type"] = stream_content_type(codec)
            if send_compression is not None:
                headers["connect-content-encoding"] = send_compression.name
            if self._accept:
                headers["connect-accept-encoding"] = self._accept
        else:
            headers["content-type"] = unary_content_type(codec)
            if send_compression is not None:
                headers["content-encoding"] = send_compression.name
            if self._accept:
                headers["accept-encoding"] = self._accept
        if timeout is not None:
            headers["connect-timeout-ms"] = encode_timeout(timeout)
        return RequestHead("POST", procedure, headers)

    def encode_unary(
        self, data: bytes, compression: _compression.Compression | None
    ) -> tuple[bytes, bool]:
        if compression is None:
            return data, False
        return compression.compress(data), True

    def encode_stream_message(
        self, data: bytes, compression: _compression.Compression | None
    ) -> bytes:
        return encode_message(data, compression)

    def start_response(self, status: int, headers: Headers, *, stream: bool) -> ResponseStart:
        codec = self.codec.name
        if stream:
            error = validate_stream_response(codec, status, headers)
            visible = CIMultiDict(headers)
            if error is not None:
                return ResponseStart(visible, error=error)
            return ResponseStart(visible, decoder=ConnectStreamDecoder(headers, self._limit))
        plain, trailers = split_unary_trailers(headers)
        verdict = validate_unary_response(codec, status, headers)
        if verdict is True:
            return ResponseStart(plain, error_body=True, trailers=trailers)
        if isinstance(verdict, ConnectError):
            verdict.metadata.extend(trailers)
            return ResponseStart(plain, error=verdict, trailers=trailers)
        decoder = ConnectUnaryDecoder(headers, self._limit)
        decoder.trailers = trailers
        return ResponseStart(plain, decoder=decoder, trailers=trailers)

    def decode_error_body(
        self, status: int, headers: Headers, body: bytes, limit: int | None
    ) -> ConnectError:
        try:
            comp = _compression.for_response(headers.get("content-encoding"), "content-encoding")
        except ConnectError:
            # An error body we cannot read still carries its HTTP status.
            return ConnectError(code_from_http_status(status), f"HTTP status {status}")
        if comp is not None:
            try:
                body = comp.decompress(body, limit)
            except (_compression.DecompressError, ConnectError):
                return ConnectError(code_from_http_status(status), f"HTTP status {status}")
        error = decode_error_json(body, status)
        _, trailers = split_unary_trailers(headers)
        error.metadata.extend(trailers)
        return error


# --- server side ---------------------------------------------------------------------------


def _request_compression(
    name: str | None, enabled: tuple[str, ...]
) -> _compression.Compression | None:
    try:
        return _compression.for_request(name, enabled)
    except ConnectError as exc:
        raise HTTPError(exc.code.http_status, exc) from None


def _media(content_type: str) -> tuple[str, str]:
    media, _, params = content_type.partition(";")
    return media.strip().lower(), params.strip().lower()


def _unsupported_media(method: MethodInfo[Any, Any]) -> HTTPError:
    stream = method.stream_type is not StreamType.UNARY
    accepted = (
        [stream_content_type(c) for c in CODECS]
        if stream
        else [unary_content_type(c) for c in CODECS]
    )
    return HTTPError(415, headers=[("accept-post", ", ".join(accepted))])


def plan_request(
    method: MethodInfo[Any, Any],
    http_method: str,
    headers: Mapping[str, str],
    query_string: bytes,
    enabled_compressions: tuple[str, ...],
) -> RequestPlan:
    """Validate a request head against ``method``; raise ``HTTPError`` to reject it."""
    stream = method.stream_type is not StreamType.UNARY
    timeout_header = headers.get("connect-timeout-ms")
    try:
        timeout = parse_timeout(timeout_header) if timeout_header is not None else None
    except ConnectError as exc:
        raise HTTPError(exc.code.http_status, exc) from None

    if http_method == "GET":
        if stream or method.idempotency is not IdempotencyLevel.NO_SIDE_EFFECTS:
            raise HTTPError(405, headers=[("allow", "POST")])
        return _plan_get(query_string, headers, timeout, enabled_compressions)
    if http_method != "POST":
        allow = (
            "GET, POST"
            if method.idempotency is IdempotencyLevel.NO_SIDE_EFFECTS and not stream
            else "POST"
        )
        raise HTTPError(405, headers=[("allow", allow)])

    content_type = headers.get("content-type", "")
    media, params = _media(content_type)
    prefix = "application/connect+" if stream else "application/"
    codec_name = media[len(prefix) :] if media.startswith(prefix) else None
    codec = CODECS.get(codec_name) if codec_name else None
    if codec is None or (
        params and not (codec.name == "json" and params in ("charset=utf-8", 'charset="utf-8"'))
    ):
        raise _unsupported_media(method)

    version = headers.get("connect-protocol-version")
    if version is not None and version != PROTOCOL_VERSION:
        raise HTTPError(
            400,
            ConnectError(
                Code.INVALID_ARGUMENT,
                f"connect-protocol-version must be {PROTOCOL_VERSION!r}, got {version!r}",
            ),
        )
    enc_header = "connect-content-encoding" if stream else "content-encoding"
    accept_header = "connect-accept-encoding" if stream else "accept-encoding"
    req_comp = _request_compression(headers.get(enc_header), enabled_compressions)
    resp_comp = negotiate_compression(headers.get(accept_header), req_comp, enabled_compressions)
    return RequestPlan(codec, stream, req_comp, resp_comp, timeout)


def _plan_get(
    query_string: bytes,
    headers: Mapping[str, str],
    timeout: float | None,
    enabled: tuple[str, ...],
) -> RequestPlan:
    query = urllib.parse.parse_qs(query_string.decode("latin-1"), keep_blank_values=True)

    def one(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    def bad(message: str) -> HTTPError:
        return HTTPError(400, ConnectError(Code.INVALID_ARGUMENT, message))

    version = one("connect")
    if version is not None and version != "v" + PROTOCOL_VERSION:
        raise bad(f"query parameter connect must be 'v{PROTOCOL_VERSION}', got {version!r}")
    encoding = one("encoding")
    if encoding is None:
        raise bad("missing query parameter 'encoding'")
    codec = CODECS.get(encoding)
    if codec is None:
        raise HTTPError(415, ConnectError(Code.UNIMPLEMENTED, f"unsupported encoding {encoding!r}"))
    raw = one("message") or ""
    if one("base64") == "1":
        try:
            message = b64decode_lenient(raw)
        except (binascii.Error, ValueError) as exc:
            raise bad(f"query parameter 'message' is not base64: {exc}") from exc
    else:
        message = raw.encode()
    req_comp = _request_compression(one("compression"), enabled)
    resp_comp = negotiate_compression(headers.get("accept-encoding"), req_comp, enabled)
    return RequestPlan(codec, False, req_comp, resp_comp, timeout, get_message=message)


_UNARY_CONTENT_TYPES = {
    name: (b"content-type", unary_content_type(name).encode()) for name in CODECS
}


def unary_response_head(
    plan: RequestPlan,
    compressed: bool,
    length: int,
    headers: CIMultiDict[str],
    trailers: CIMultiDict[str],
) -> RawHeaders:
    """Headers of a successful unary response; trailers ride along as ``trailer-`` headers."""
    out: RawHeaders = [
        _UNARY_CONTENT_TYPES[plan.codec.name],
        (b"content-length", str(length).encode()),
    ]
    if compressed and plan.response_compression is not None:
        out.append((b"content-encoding", plan.response_compression.name.encode()))
    if headers:
        out.extend(_encode_headers(headers.items()))
    if trailers:
        out.extend(_encode_headers((UNARY_TRAILER_PREFIX + k, v) for k, v in trailers.items()))
    return out


def unary_error_response(
    error: ConnectError,
    headers: CIMultiDict[str],
    trailers: CIMultiDict[str],
) -> tuple[int, RawHeaders, bytes]:
    """Status, headers and JSON body of a unary error response."""
    body = encode_error_json(error)
    out: list[tuple[str, str]] = [
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
    ]
    out.extend(headers.items())
    out.extend((UNARY_TRAILER_PREFIX + k, v) for k, v in trailers.items())
    out.extend((UNARY_TRAILER_PREFIX + k, v) for k, v in error.metadata.items())
    return error.code.http_status, _encode_headers(out), body


def stream_response_head(plan: RequestPlan, headers: CIMultiDict[str]) -> RawHeaders:
    """Headers of a streaming response (always status 200)."""
    out: list[tuple[str, str]] = [("content-type", stream_content_type(plan.codec.name))]
    if plan.response_compression is not None:
        out.append(("connect-content-encoding", plan.response_compression.name))
    out.extend(headers.items())
    return _encode_headers(out)


def http_error_response(err: HTTPError) -> tuple[int, RawHeaders, bytes]:
    """Status, headers and body for a request rejected before the handler."""
    out = list(err.headers)
    body = b""
    if err.error is not None:
        out.append(("content-type", "application/json"))
        body = encode_error_json(err.error)
    out.append(("content-length", str(len(body))))
    return err.status, _encode_headers(out), body


class ConnectServerProtocol(ServerProtocol):
    """The Connect protocol, server side: bare unary messages with JSON errors, enveloped
    streams ending in an end-of-stream message, and GET for side-effect-free methods."""

    name = "connect"

    def serves(self, media_type: str) -> bool:
        return media_type.startswith("application/") and (
            media_type[len("application/") :] in CODECS
            or (
                media_type.startswith("application/connect+")
                and media_type[len("application/connect+") :] in CODECS
            )
        )

    def content_types(self, stream: bool) -> list[str]:
        if stream:
            return [stream_content_type(c) for c in CODECS]
        return [unary_content_type(c) for c in CODECS]

    def plan(
        self,
        method: MethodInfo[Any, Any] | None,
        http_method: str,
        headers: Mapping[str, str],
        query_string: bytes,
        enabled_compressions: tuple[str, ...],
        trailers_supported: bool,
    ) -> RequestPlan:
        if method is None:
            raise HTTPError(404, ConnectError(Code.UNIMPLEMENTED, "no such procedure"))
        return plan_request(method, http_method, headers, query_string, enabled_compressions)

    def whole_error(self, plan: RequestPlan) -> bool:
        return not plan.stream

    def unary_head(
        self,
        plan: RequestPlan,
        compressed: bool,
        length: int,
        headers: CIMultiDict[str],
        trailers: CIMultiDict[str],
    ) -> RawHeaders:
        return unary_response_head(plan, compressed, length, headers, trailers)

    def error_response(
        self,
        plan: RequestPlan,
        error: ConnectError,
        headers: CIMultiDict[str],
        trailers: CIMultiDict[str],
    ) -> tuple[int, RawHeaders, bytes]:
        return unary_error_response(error, headers, trailers)

    def stream_head(self, plan: RequestPlan, headers: CIMultiDict[str]) -> tuple[RawHeaders, bool]:
        return stream_response_head(plan, headers), False

    def end_stream(
        self, plan: RequestPlan, error: ConnectError | None, trailers: CIMultiDict[str]
    ) -> tuple[bytes, RawHeaders | None]:
        if error is not None and error.metadata:
            trailers = CIMultiDict(trailers)
            trailers.extend(error.metadata)
        return encode_envelope(FLAG_END_STREAM, encode_end_stream(error, trailers)), None
