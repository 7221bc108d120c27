"""Connect protocol rules on the client side, pinned to exact bytes, codes and messages.

Written to kill the mutants tools/mutation.sh found surviving in connectrpc._protocol.connect:
each test asserts a behaviour of the protocol (what goes on the wire, which error a malformed
response yields and what it says), not how the module computes it.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable

import pytest
from google.protobuf import wrappers_pb2
from multidict import CIMultiDict

from connectrpc._core import compression as _compression
from connectrpc._core.codec import CODECS
from connectrpc._core.envelope import encode_envelope
from connectrpc._core.error import ErrorDetail
from connectrpc._protocol.connect import (
    ConnectClientProtocol,
    ConnectStreamDecoder,
    ConnectUnaryDecoder,
    decode_error_json,
    encode_end_stream,
    encode_error_json,
    get_query,
    parse_timeout,
    validate_stream_response,
    validate_unary_response,
)
from connectrpc.errors import Code, ConnectError


def _gzip() -> _compression.Compression:
    comp = _compression.get("gzip")
    assert comp is not None
    return comp


GZIP = _gzip()
SUPPORTED = ", ".join(("identity", *_compression.available()))


def _h(*pairs: tuple[str, str]) -> CIMultiDict[str]:
    return CIMultiDict(pairs)


# --- timeouts ---------------------------------------------------------------------------


def test_parse_timeout_takes_ten_digits_and_rejects_eleven() -> None:
    assert parse_timeout("1234567890") == 1234567.89
    with pytest.raises(ConnectError) as info:
        parse_timeout("12345678901")
    assert info.value.code is Code.INVALID_ARGUMENT
    assert info.value.message == (
        "invalid connect-timeout-ms '12345678901': expected 1 to 10 ASCII digits"
    )


# --- GET query --------------------------------------------------------------------------


def test_get_query_exact_strings() -> None:
    # b"\xff" is "_w==" in URL-safe base64: the padding is dropped.
    assert get_query("proto", b"\xff", None) == "connect=v1&encoding=proto&base64=1&message=_w"
    # b"\x00\x00\x17" is "AAAX": only "=" padding is stripped, never other characters.
    assert get_query("proto", b"\x00\x00\x17", "gzip") == (
        "connect=v1&encoding=proto&compression=gzip&base64=1&message=AAAX"
    )
    # Uncompressed JSON is percent-encoded, a space as %20 (not "+").
    assert get_query("json", b'{"a":"b c"}', None) == (
        "connect=v1&encoding=json&message=%7B%22a%22%3A%22b%20c%22%7D"
    )


# --- error JSON -------------------------------------------------------------------------


def test_encode_error_json_exact_bytes() -> None:
    err = ConnectError(
        Code.NOT_FOUND, "gone", details=[ErrorDetail("google.protobuf.BytesValue", b"\0\0\x17")]
    )
    assert encode_error_json(err) == (
        b'{"code":"not_found","message":"gone",'
        b'"details":[{"type":"google.protobuf.BytesValue","value":"AAAX"}]}'
    )
    assert encode_error_json(ConnectError(Code.INTERNAL)) == b'{"code":"internal"}'


def test_encode_end_stream_exact_bytes() -> None:
    assert encode_end_stream(ConnectError(Code.ABORTED, "m"), _h(("X-A", "1"))) == (
        b'{"error":{"code":"aborted","message":"m"},"metadata":{"x-a":["1"]}}'
    )
    assert encode_end_stream(None, _h()) == b"{}"


def test_decode_error_json_fields() -> None:
    err = decode_error_json(b'{"code":"not_found"}', 500)
    assert (err.code, err.message, err.details, err.wire) == (Code.NOT_FOUND, "", (), True)
    body = json.dumps(
        {
            "code": "aborted",
            "message": "m",
            "details": [
                # A type URL, URL-safe unpadded base64, and the optional debug form.
                {"type": "x.test/a/b.c.T", "value": "-_8", "debug": {"k": 1}},
                # "value" may be left out: an empty message.
                {"type": "b.c.U"},
            ],
        }
    ).encode()
    err = decode_error_json(body, 500)
    assert err.code is Code.ABORTED
    assert [(d.type_name, d.value, d.debug) for d in err.details] == [
        ("b.c.T", b"\xfb\xff", {"k": 1}),
        ("b.c.U", b"", None),
    ]


def test_decode_error_json_detail_round_trip() -> None:
    err = ConnectError(Code.NOT_FOUND, "x", details=[wrappers_pb2.StringValue(value="why")])
    back = decode_error_json(encode_error_json(err), 404)
    assert back.details[0].unpack(wrappers_pb2.StringValue) == wrappers_pb2.StringValue(value="why")


@pytest.mark.parametrize(
    "body",
    [
        b'{"code":"not_found","details":[{"type":"x","value":"!!!!"}]}',  # not base64
        b'{"code":"not_found","details":[{"type":"x","value":5}]}',  # value not a string
        b'{"code":"not_found","message":5}',
    ],
)
def test_decode_error_json_invalid_falls_back_to_http_status(body: bytes) -> None:
    err = decode_error_json(body, 502)
    assert (err.code, err.message, err.details, err.wire) == (
        Code.UNAVAILABLE,
        "HTTP status 502",
        (),
        True,
    )


# --- end-of-stream messages -------------------------------------------------------------


def _stream_decoder(*pairs: tuple[str, str], limit: int | None = None) -> ConnectStreamDecoder:
    return ConnectStreamDecoder(_h(*pairs), limit)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[]", "not a JSON object"),
        (b'{"metadata":[1]}', "metadata is not an object"),
        (b'{"metadata":{"k":"v"}}', "metadata 'k' is not a list of strings"),
        (b'{"metadata":{"k":["v",1]}}', "metadata 'k' is not a list of strings"),
        (b'{"error":5}', "error is not a JSON object"),
        (b'{"error":{"code":5}}', "error code is not a string"),
        (b'{"error":{"code":"aborted","message":5}}', "error message is not a string"),
        (b'{"error":{"code":"aborted","details":{}}}', "error details is not a list"),
        (b'{"error":{"code":"aborted","details":[5]}}', "error detail is not an object"),
        (
            b'{"error":{"code":"aborted","details":[{"type":"t","value":5}]}}',
            "error detail needs string 'type' and 'value'",
        ),
        (
            b'{"error":{"code":"aborted","details":[{"type":5,"value":""}]}}',
            "error detail needs string 'type' and 'value'",
        ),
    ],
)
def test_invalid_end_stream_messages(payload: bytes, reason: str) -> None:
    dec = _stream_decoder()
    with pytest.raises(ConnectError) as info:
        dec.feed(encode_envelope(2, payload))
    assert info.value.code is Code.INTERNAL
    assert info.value.message == f"protocol error: invalid end-of-stream message: {reason}"


def test_end_stream_detail_not_base64_message() -> None:
    dec = _stream_decoder()
    payload = b'{"error":{"code":"aborted","details":[{"type":"t","value":"!!"}]}}'
    with pytest.raises(ConnectError) as info:
        dec.feed(encode_envelope(2, payload))
    assert info.value.message.startswith(
        "protocol error: invalid end-of-stream message: error detail value is not base64: "
    )


def test_end_stream_error_without_code_is_unknown() -> None:
    dec = _stream_decoder()
    assert dec.error is None
    assert len(dec.trailers) == 0
    dec.feed(encode_envelope(2, b'{"error":{"message":"m"},"metadata":{"k":["1","2"]}}'))
    assert dec.error is not None
    assert (dec.error.code, dec.error.message) == (Code.UNKNOWN, "m")
    assert dec.trailers.getall("k") == ["1", "2"]
    assert dec.finish() == []


# --- stream decoding --------------------------------------------------------------------


def test_stream_decoder_messages_compression_and_end() -> None:
    dec = _stream_decoder(("connect-content-encoding", "gzip"))
    data = encode_envelope(0, b"plain") + encode_envelope(1, GZIP.compress(b"packed"))
    assert dec.feed(data) == [b"plain", b"packed"]
    assert dec.feed(encode_envelope(3, GZIP.compress(b"{}"))) == []
    assert dec.error is None
    with pytest.raises(ConnectError) as info:
        dec.feed(encode_envelope(0, b"late"))
    assert (info.value.code, info.value.message) == (
        Code.INTERNAL,
        "protocol error: received data after end-of-stream message",
    )


def test_stream_decoder_compressed_without_encoding() -> None:
    with pytest.raises(ConnectError) as info:
        _stream_decoder().feed(encode_envelope(1, b"x"))
    assert (info.value.code, info.value.message) == (
        Code.INTERNAL,
        "protocol error: compressed message without connect-content-encoding",
    )


def test_stream_decoder_ended_without_end_stream() -> None:
    dec = _stream_decoder()
    dec.feed(encode_envelope(0, b"x"))
    with pytest.raises(ConnectError) as info:
        dec.finish()
    assert (info.value.code, info.value.message) == (
        Code.INTERNAL,
        "protocol error: stream ended without an end-of-stream message",
    )


@pytest.mark.parametrize(
    ("header", "decoder"),
    [
        ("connect-content-encoding", ConnectStreamDecoder),
        ("content-encoding", ConnectUnaryDecoder),
    ],
)
def test_unsupported_response_compression(
    header: str, decoder: type[ConnectStreamDecoder | ConnectUnaryDecoder]
) -> None:
    with pytest.raises(ConnectError) as info:
        decoder(_h((header, "lz4")), None)
    assert (info.value.code, info.value.message) == (
        Code.INTERNAL,
        f"protocol error: peer used unsupported {header} 'lz4' (supported: {SUPPORTED})",
    )


@pytest.mark.parametrize("name", ["", "identity"])
def test_identity_response_compression(name: str) -> None:
    dec = ConnectUnaryDecoder(_h(("content-encoding", name)), None)
    dec.feed(b"as is")
    assert dec.finish() == [b"as is"]


# --- unary decoding ---------------------------------------------------------------------


def test_unary_decoder_limit_counts_every_chunk() -> None:
    dec = ConnectUnaryDecoder(_h(), 10)
    assert len(dec.trailers) == 0
    dec.feed(b"12345")
    dec.feed(b"67890")  # exactly the limit: fine
    assert dec.finish() == [b"1234567890"]
    dec = ConnectUnaryDecoder(_h(), 10)
    dec.feed(b"123456")
    with pytest.raises(ConnectError) as info:
        dec.feed(b"78901")
    assert (info.value.code, info.value.message) == (
        Code.RESOURCE_EXHAUSTED,
        "message size is larger than the configured limit of 10 bytes",
    )


def test_unary_decoder_compressed_body_may_exceed_limit_before_decompression() -> None:
    body = GZIP.compress(b"0123456789")
    assert len(body) > 10
    dec = ConnectUnaryDecoder(_h(("content-encoding", "gzip")), 10)
    dec.feed(body[:5])
    dec.feed(body[5:])
    assert dec.finish() == [b"0123456789"]


def test_unary_decoder_corrupt_body_is_internal() -> None:
    dec = ConnectUnaryDecoder(_h(("content-encoding", "gzip")), None)
    dec.feed(b"not gzip")
    with pytest.raises(ConnectError) as info:
        dec.finish()
    assert info.value.code is Code.INTERNAL


# --- response heads ---------------------------------------------------------------------


@pytest.mark.parametrize("validate", [validate_unary_response, validate_stream_response])
def test_non_200_without_content_type(
    validate: Callable[[str, int, CIMultiDict[str]], ConnectError | bool | None],
) -> None:
    err = validate("proto", 503, _h())
    assert isinstance(err, ConnectError)
    assert (err.code, err.message, err.wire) == (Code.UNAVAILABLE, "HTTP status 503", True)


def test_unary_response_content_types() -> None:
    assert validate_unary_response("proto", 200, _h(("content-type", "application/proto"))) is None
    ok = "application/proto; charset=utf-8; x=y"
    assert validate_unary_response("proto", 200, _h(("content-type", ok))) is None
    assert validate_unary_response("json", 200, _h(("content-type", "application/json;x"))) is None
    assert validate_unary_response("json", 404, _h(("content-type", "application/json"))) is True
    for headers, code, shown in [
        (_h(), Code.UNKNOWN, "''"),
        (_h(("content-type", "text/html")), Code.UNKNOWN, "'text/html'"),
        (_h(("content-type", "application/json")), Code.INTERNAL, "'application/json'"),
    ]:
        err = validate_unary_response("proto", 200, headers)
        assert isinstance(err, ConnectError)
        assert (err.code, err.message) == (
            code,
            f"invalid content-type {shown}; expecting 'application/proto'",
        )


def test_stream_response_content_types() -> None:
    ct = "application/connect+proto; x=y"
    assert validate_stream_response("proto", 200, _h(("content-type", ct))) is None
    for headers, code, shown in [
        (_h(), Code.UNKNOWN, "''"),
        (_h(("content-type", "application/proto")), Code.UNKNOWN, "'application/proto'"),
        (_h(("content-type", "application/connect+json")), Code.INTERNAL, "'application/connect+json'"),
    ]:  # fmt: skip
        err = validate_stream_response("proto", 200, headers)
        assert isinstance(err, ConnectError)
        assert (err.code, err.message) == (
            code,
            f"invalid content-type {shown}; expecting 'application/connect+proto'",
        )


# --- the client protocol object ---------------------------------------------------------


def _client(
    accept: tuple[str, ...] = ("gzip", "br"), limit: int | None = None
) -> ConnectClientProtocol:
    return ConnectClientProtocol(CODECS["proto"], accept, "ua/1", limit)


def test_request_heads_exact() -> None:
    head = _client().request_head("/s/M", stream=False, timeout=1.5, send_compression=GZIP)
    assert (head.method, head.path) == ("POST", "/s/M")
    assert list(head.headers.items()) == [
        ("user-agent", "ua/1"),
        ("connect-protocol-version", "1"),
        ("content-type", "application/proto"),
        ("content-encoding", "gzip"),
        ("accept-encoding", "gzip, br"),
        ("connect-timeout-ms", "1500"),
    ]
    head = _client().request_head("/s/M", stream=True, timeout=0.25, send_compression=GZIP)
    assert list(head.headers.items()) == [
        ("user-agent", "ua/1"),
        ("connect-protocol-version", "1"),
        ("content-type", "application/connect+proto"),
        ("connect-content-encoding", "gzip"),
        ("connect-accept-encoding", "gzip, br"),
        ("connect-timeout-ms", "250"),
    ]
    head = _client(accept=()).request_head("/s/M", stream=True, timeout=None, send_compression=None)
    assert list(head.headers.items()) == [
        ("user-agent", "ua/1"),
        ("connect-protocol-version", "1"),
        ("content-type", "application/connect+proto"),
    ]


def test_get_request_head_exact() -> None:
    head = _client().request_head(
        "/s/M", stream=False, timeout=2, send_compression=None, get_message=b"\xff"
    )
    assert (head.method, head.path) == ("GET", "/s/M?connect=v1&encoding=proto&base64=1&message=_w")
    assert list(head.headers.items()) == [
        ("user-agent", "ua/1"),
        ("accept-encoding", "gzip, br"),
        ("connect-timeout-ms", "2000"),
    ]


def test_encode_unary_and_stream_message() -> None:
    c = _client()
    assert c.encode_unary(b"abc", None) == (b"abc", False)
    packed, compressed = c.encode_unary(b"abc", GZIP)
    assert compressed is True
    assert gzip.decompress(packed) == b"abc"
    frame = c.encode_stream_message(b"abc", GZIP)
    assert frame[0] == 1
    assert gzip.decompress(frame[5:]) == b"abc"
    assert c.encode_stream_message(b"abc", None) == b"\0\0\0\0\3abc"


def test_start_response_unary_error_status_keeps_headers_and_trailers() -> None:
    headers = _h(("content-type", "text/plain"), ("x-h", "1"), ("trailer-x-t", "2"))
    start = _client().start_response(502, headers, stream=False)
    assert start.error is not None
    assert start.error.code is Code.UNAVAILABLE
    assert list(start.headers.items()) == [("content-type", "text/plain"), ("x-h", "1")]
    assert start.trailers is not None
    assert list(start.trailers.items()) == [("x-t", "2")]
    assert start.error.metadata.getall("x-t") == ["2"]


def test_start_response_unary_error_body_and_success() -> None:
    headers = _h(("content-type", "application/json"), ("x-h", "1"), ("trailer-x-t", "2"))
    start = _client().start_response(404, headers, stream=False)
    assert start.error_body is True
    assert list(start.headers.items()) == [("content-type", "application/json"), ("x-h", "1")]
    assert start.trailers is not None
    assert list(start.trailers.items()) == [("x-t", "2")]
    headers = _h(("content-type", "application/proto"), ("trailer-x-t", "2"))
    start = _client().start_response(200, headers, stream=False)
    assert start.decoder is not None
    assert list(start.headers.items()) == [("content-type", "application/proto")]
    assert start.trailers is not None
    assert list(start.trailers.items()) == [("x-t", "2")]
    assert list(start.decoder.trailers.items()) == [("x-t", "2")]


def test_start_response_stream_error_keeps_headers() -> None:
    start = _client().start_response(503, _h(("x-h", "1")), stream=True)
    assert start.error is not None
    assert start.error.code is Code.UNAVAILABLE
    assert list(start.headers.items()) == [("x-h", "1")]


def test_decode_error_body_compressed() -> None:
    body = GZIP.compress(b'{"code":"aborted","message":"m"}')
    headers = _h(("content-encoding", "gzip"), ("trailer-x-t", "2"))
    err = _client().decode_error_body(409, headers, body, None)
    assert (err.code, err.message) == (Code.ABORTED, "m")
    assert err.metadata.getall("x-t") == ["2"]


@pytest.mark.parametrize(
    ("body", "limit"),
    [
        (b"not gzip", None),
        (gzip.compress(b'{"code":"aborted","message":"' + b"m" * 100 + b'"}'), 50),
        (zlib.compress(b'{"code":"aborted"}'), None),  # zlib framing is not gzip
    ],
)
def test_decode_error_body_undecodable_uses_http_status(body: bytes, limit: int | None) -> None:
    err = _client().decode_error_body(503, _h(("content-encoding", "gzip")), body, limit)
    assert (err.code, err.message) == (Code.UNAVAILABLE, "HTTP status 503")


def test_decode_error_body_unsupported_encoding() -> None:
    """An error body in an encoding we cannot read still reports its HTTP status's code."""
    error = _client().decode_error_body(503, _h(("content-encoding", "lz4")), b"", None)
    assert (error.code, error.message) == (Code.UNAVAILABLE, "HTTP status 503")
