"""Connect protocol rules on the server side: request plans, rejections and response heads.

Written to kill the mutants tools/mutation.sh found surviving in
connectrpc._protocol.connect. Request headers are given as ASGI servers hand them over:
a plain dict with lowercase names.
"""

from __future__ import annotations

import pytest
from google.protobuf import wrappers_pb2
from multidict import CIMultiDict

from connectrpc._core import compression as _compression
from connectrpc._core.codec import CODECS
from connectrpc._protocol.connect import (
    HTTPError,
    RequestPlan,
    http_error_response,
    negotiate_compression,
    plan_request,
    stream_response_head,
    unary_error_response,
    unary_response_head,
)
from connectrpc.errors import Code, ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType

S = wrappers_pb2.StringValue
UNARY = MethodInfo("t.S", "U", S, S, StreamType.UNARY)
GETTABLE = MethodInfo("t.S", "G", S, S, StreamType.UNARY, IdempotencyLevel.NO_SIDE_EFFECTS)
STREAM = MethodInfo("t.S", "B", S, S, StreamType.BIDI_STREAM, IdempotencyLevel.NO_SIDE_EFFECTS)
GZIP = _compression.get("gzip")
BR = _compression.get("br")
ZSTD = _compression.get("zstd")
ALL = ("gzip", "br", "zstd")


def _reject(
    method: MethodInfo[S, S],
    http_method: str,
    headers: dict[str, str],
    query: bytes = b"",
    enabled: tuple[str, ...] = ALL,
) -> HTTPError:
    with pytest.raises(HTTPError) as info:
        plan_request(method, http_method, headers, query, enabled)
    return info.value


def _post(ct: str, **extra: str) -> dict[str, str]:
    return {"content-type": ct, **{k.replace("_", "-"): v for k, v in extra.items()}}


# --- compression negotiation ------------------------------------------------------------


def test_negotiate_compression() -> None:
    assert negotiate_compression("gzip", BR, ALL) is BR  # the request's own wins
    assert negotiate_compression(None, None, ALL) is None
    assert negotiate_compression("", None, ALL) is None
    assert negotiate_compression("zstd, gzip", None, ALL) is ZSTD  # the client's order
    assert negotiate_compression("gzip, br", None, ("gzip", "br")) is GZIP
    assert negotiate_compression("snappy, BR;q=0.5;x=y, gzip", None, ALL) is BR
    assert negotiate_compression("gzip;q=1", None, ALL) is GZIP
    assert negotiate_compression("br, zstd", None, ("gzip",)) is None


# --- POST requests ----------------------------------------------------------------------


def test_plan_unary_post() -> None:
    headers = _post(
        "application/json; charset=utf-8",
        content_encoding="gzip",
        accept_encoding="br",
        connect_timeout_ms="1500",
        connect_protocol_version="1",
    )
    plan = plan_request(UNARY, "POST", headers, b"", ALL)
    assert plan == RequestPlan(CODECS["json"], False, GZIP, GZIP, 1.5)
    plan = plan_request(UNARY, "POST", _post("application/proto", accept_encoding="br"), b"", ALL)
    assert plan == RequestPlan(CODECS["proto"], False, None, BR, None)


def test_plan_stream_post_uses_connect_headers() -> None:
    headers = _post(
        "application/connect+proto",
        connect_content_encoding="zstd",
        connect_accept_encoding="gzip",
    )
    plan = plan_request(STREAM, "POST", headers, b"", ALL)
    assert plan == RequestPlan(CODECS["proto"], True, ZSTD, ZSTD, None)
    headers = _post("application/connect+proto", connect_accept_encoding="gzip")
    assert plan_request(STREAM, "POST", headers, b"", ALL).response_compression is GZIP
    # The unary header names mean nothing on a stream.
    headers = _post("application/connect+proto", accept_encoding="gzip")
    assert plan_request(STREAM, "POST", headers, b"", ALL).response_compression is None


@pytest.mark.parametrize(
    "ct", ["application/json;charset=utf-8", 'application/json; charset="utf-8"', "Application/JSON; CHARSET=UTF-8"]
)  # fmt: skip
def test_json_charset_utf8_accepted(ct: str) -> None:
    assert plan_request(UNARY, "POST", _post(ct), b"", ALL).codec is CODECS["json"]


@pytest.mark.parametrize("compression", ["", "identity"])
def test_identity_request_compression(compression: str) -> None:
    headers = _post("application/proto", content_encoding=compression)
    assert plan_request(UNARY, "POST", headers, b"", ALL).request_compression is None


@pytest.mark.parametrize(
    ("method", "ct"),
    [
        (UNARY, "application/proto; charset=utf-8"),  # a charset only for JSON
        (UNARY, "application/json; charset=latin-1"),
        (UNARY, "applicatiox/json"),  # the prefix is checked, not just its length
        (UNARY, "application/connect+proto"),
        (UNARY, ""),
        (STREAM, "application/proto"),
    ],
)
def test_unsupported_media_type(method: MethodInfo[S, S], ct: str) -> None:
    err = _reject(method, "POST", _post(ct))
    assert (err.status, err.error) == (415, None)
    if method is UNARY:
        assert err.headers == [("accept-post", "application/proto, application/json")]
    else:
        expected = "application/connect+proto, application/connect+json"
        assert err.headers == [("accept-post", expected)]


def test_missing_content_type_is_unsupported_media() -> None:
    err = _reject(UNARY, "POST", {})
    assert err.status == 415
    assert err.headers == [("accept-post", "application/proto, application/json")]


def test_wrong_protocol_version() -> None:
    err = _reject(UNARY, "POST", _post("application/proto", connect_protocol_version="2"))
    assert err.status == 400
    assert err.error is not None
    assert (err.error.code, err.error.message) == (
        Code.INVALID_ARGUMENT,
        "connect-protocol-version must be '1', got '2'",
    )


def test_request_compression_not_enabled() -> None:
    err = _reject(
        UNARY, "POST", _post("application/proto", content_encoding="br"), enabled=("gzip",)
    )
    assert err.status == 501
    assert err.error is not None
    assert (err.error.code, err.error.message) == (
        Code.UNIMPLEMENTED,
        "unknown compression 'br': supported encodings are identity, gzip",
    )


@pytest.mark.parametrize(
    ("method", "http_method", "allow"),
    [
        (UNARY, "PUT", "POST"),
        (GETTABLE, "PUT", "GET, POST"),
        (STREAM, "PUT", "POST"),  # no GET for streams, even without side effects
        (UNARY, "GET", "POST"),
        (STREAM, "GET", "POST"),
    ],
)
def test_method_not_allowed(method: MethodInfo[S, S], http_method: str, allow: str) -> None:
    err = _reject(method, http_method, _post("application/proto"))
    assert (err.status, err.error, err.headers) == (405, None, [("allow", allow)])
    assert str(err) == "405"


# --- GET requests -----------------------------------------------------------------------


def test_plan_get() -> None:
    query = b"connect=v1&encoding=proto&base64=1&message=_w"
    headers = {"accept-encoding": "gzip", "connect-timeout-ms": "250"}
    plan = plan_request(GETTABLE, "GET", headers, query, ALL)
    assert plan == RequestPlan(CODECS["proto"], False, None, GZIP, 0.25, get_message=b"\xff")
    plan = plan_request(GETTABLE, "GET", {}, b"encoding=json&message=%7B%7D&compression=br", ALL)
    assert plan == RequestPlan(CODECS["json"], False, BR, BR, None, get_message=b"{}")
    plan = plan_request(GETTABLE, "GET", {}, b"encoding=json", ALL)
    assert plan.get_message == b""


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (b"connect=v2&encoding=proto", "query parameter connect must be 'v1', got 'v2'"),
        (b"connect=&encoding=proto", "query parameter connect must be 'v1', got ''"),
        (b"connect=v1", "missing query parameter 'encoding'"),
    ],
)
def test_get_bad_query(query: bytes, message: str) -> None:
    err = _reject(GETTABLE, "GET", {}, query)
    assert err.status == 400
    assert err.error is not None
    assert (err.error.code, err.error.message) == (Code.INVALID_ARGUMENT, message)


def test_get_bad_base64() -> None:
    err = _reject(GETTABLE, "GET", {}, b"encoding=proto&base64=1&message=!!")
    assert err.status == 400
    assert err.error is not None
    assert err.error.code is Code.INVALID_ARGUMENT
    assert err.error.message.startswith("query parameter 'message' is not base64: ")


def test_get_unsupported_encoding() -> None:
    err = _reject(GETTABLE, "GET", {}, b"encoding=xml")
    assert err.status == 415
    assert err.error is not None
    assert (err.error.code, err.error.message) == (Code.UNIMPLEMENTED, "unsupported encoding 'xml'")


# --- response heads ---------------------------------------------------------------------


def _plan(codec: str = "proto", resp: _compression.Compression | None = None) -> RequestPlan:
    return RequestPlan(CODECS[codec], False, None, resp, None)


def test_unary_response_head_exact() -> None:
    headers: CIMultiDict[str] = CIMultiDict([("X-H", "1")])
    trailers: CIMultiDict[str] = CIMultiDict([("X-T", "2")])
    assert unary_response_head(_plan(resp=GZIP), True, 12, headers, trailers) == [
        (b"content-type", b"application/proto"),
        (b"content-length", b"12"),
        (b"content-encoding", b"gzip"),
        (b"x-h", b"1"),
        (b"trailer-x-t", b"2"),
    ]
    empty: CIMultiDict[str] = CIMultiDict()
    assert unary_response_head(_plan("json", GZIP), False, 0, empty, empty) == [
        (b"content-type", b"application/json"),
        (b"content-length", b"0"),
    ]


def test_unary_error_response_exact() -> None:
    err = ConnectError(Code.NOT_FOUND, "gone", metadata={"x-m": "3"})
    headers: CIMultiDict[str] = CIMultiDict([("x-h", "1")])
    trailers: CIMultiDict[str] = CIMultiDict([("x-t", "2")])
    status, head, body = unary_error_response(err, headers, trailers)
    assert (status, body) == (404, b'{"code":"not_found","message":"gone"}')
    assert head == [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-h", b"1"),
        (b"trailer-x-t", b"2"),
        (b"trailer-x-m", b"3"),
    ]


def test_stream_response_head_exact() -> None:
    headers: CIMultiDict[str] = CIMultiDict([("X-H", "1")])
    assert stream_response_head(_plan(resp=ZSTD), headers) == [
        (b"content-type", b"application/connect+proto"),
        (b"connect-content-encoding", b"zstd"),
        (b"x-h", b"1"),
    ]


def test_http_error_response_exact() -> None:
    assert http_error_response(HTTPError(405, headers=[("allow", "POST")])) == (
        405,
        [(b"allow", b"POST"), (b"content-length", b"0")],
        b"",
    )
    status, head, body = http_error_response(HTTPError(400, ConnectError(Code.INTERNAL, "x")))
    assert (status, body) == (400, b'{"code":"internal","message":"x"}')
    assert head == [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]


def test_invalid_response_headers_are_refused() -> None:
    from connectrpc._protocol.connect import InvalidHeaderError

    bad_name: CIMultiDict[str] = CIMultiDict([("bad name", "v")])
    with pytest.raises(InvalidHeaderError) as info:
        stream_response_head(_plan(), bad_name)
    assert str(info.value) == "invalid header name 'bad name'"
    bad_value: CIMultiDict[str] = CIMultiDict([("x-h", "a\nb")])
    with pytest.raises(InvalidHeaderError) as info:
        stream_response_head(_plan(), bad_value)
    assert str(info.value) == (
        "invalid value for header 'x-h': 'a\\nb' (HTTP allows latin-1 text without "
        "control characters; encode other text, e.g. percent-encoding or base64)"
    )
    # latin-1 text is fine, and goes out as latin-1 bytes.
    ok: CIMultiDict[str] = CIMultiDict([("x-h", "caf\u00e9")])
    assert stream_response_head(_plan(), ok)[-1] == (b"x-h", b"caf\xe9")
