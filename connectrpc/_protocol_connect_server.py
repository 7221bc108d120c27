"""The Connect protocol's server-side rules, as pure functions.

Given a request's method, path, query and headers, decide how to read it (codec,
compression, deadline) or which HTTP error to answer with; and build the response heads.
Spec: https://connectrpc.com/docs/protocol.
"""

from __future__ import annotations

import binascii
import urllib.parse
from collections.abc import Mapping
from typing import Any

from multidict import CIMultiDict

from . import _compression
from ._code import Code
from ._codec import CODECS
from ._envelope import FLAG_END_STREAM, encode_envelope
from ._error import ConnectError
from ._headers import b64decode_lenient
from ._protocol_connect import (
    PROTOCOL_VERSION,
    UNARY_TRAILER_PREFIX,
    encode_end_stream,
    encode_error_json,
    parse_timeout,
    stream_content_type,
    unary_content_type,
)
from ._server_protocol import (
    HTTPError,
    InvalidHeaderError,
    RawHeaders,
    RequestPlan,
    ServerProtocol,
    negotiate_compression,
)
from ._server_protocol import encode_headers as _encode_headers
from .method import IdempotencyLevel, MethodInfo, StreamType

__all__ = [
    "ConnectServerProtocol",
    "HTTPError",
    "InvalidHeaderError",
    "RequestPlan",
    "negotiate_compression",
    "plan_request",
    "stream_response_head",
    "unary_error_response",
    "unary_response_head",
]


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
