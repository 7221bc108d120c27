"""Pure Connect protocol rules: timeouts, GET queries, error JSON, end-of-stream, trailers."""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest
from google.protobuf import wrappers_pb2
from multidict import CIMultiDict

from connectrpc._core.code import Code, code_from_http_status
from connectrpc._protocol.connect import (
    decode_error_json,
    encode_end_stream,
    encode_error_json,
    encode_timeout,
    get_query,
    parse_timeout,
    split_unary_trailers,
)
from connectrpc.errors import ConnectError, ErrorDetail


def test_timeout_encoding_rounds_up_and_caps() -> None:
    assert encode_timeout(1.5) == "1500"
    assert encode_timeout(0.0001) == "1"
    assert encode_timeout(1e12) == "9999999999"
    assert parse_timeout("250") == 0.25
    for bad in ("", "-1", "1.5", "12345678901", "1e3"):
        with pytest.raises(ConnectError) as info:
            parse_timeout(bad)
        assert info.value.code is Code.INVALID_ARGUMENT, bad


def test_get_query_binary_and_json() -> None:
    q = urllib.parse.parse_qs(get_query("proto", b"\xff\x00", None))
    assert q["connect"] == ["v1"]
    assert q["encoding"] == ["proto"]
    assert q["base64"] == ["1"]
    assert base64.urlsafe_b64decode(q["message"][0] + "==") == b"\xff\x00"
    q = urllib.parse.parse_qs(get_query("json", b'{"a":"b c"}', None))
    assert q["message"] == ['{"a":"b c"}']
    assert "base64" not in q
    q = urllib.parse.parse_qs(get_query("json", b"xx", "gzip"))
    assert q["compression"] == ["gzip"]
    assert q["base64"] == ["1"]


def test_error_json_round_trip() -> None:
    err = ConnectError(Code.NOT_FOUND, "gone", details=[wrappers_pb2.StringValue(value="why")])
    body = encode_error_json(err)
    obj = json.loads(body)
    assert obj["code"] == "not_found"
    assert "=" not in obj["details"][0]["value"]
    back = decode_error_json(body, 404)
    assert back.code is Code.NOT_FOUND
    assert back.message == "gone"
    assert back.details[0].unpack(wrappers_pb2.StringValue) == wrappers_pb2.StringValue(value="why")
    assert back.details[0].unpack(wrappers_pb2.Int32Value) is None
    assert back.wire


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"code":"foobar"}', 429, Code.UNAVAILABLE),
        (b'{"message":"no code"}', 401, Code.UNAUTHENTICATED),
        (b"not json", 403, Code.PERMISSION_DENIED),
        (b'{"code":5}', 500, Code.UNKNOWN),
        (b'{"code":"aborted","details":"x"}', 500, Code.UNKNOWN),
    ],
)
def test_error_json_fallbacks(body: bytes, status: int, code: Code) -> None:
    assert decode_error_json(body, status).code is code


def test_end_stream_metadata() -> None:
    trailers: CIMultiDict[str] = CIMultiDict([("x-a", "1"), ("X-A", "2"), ("x-b", "3")])
    obj = json.loads(encode_end_stream(None, trailers))
    assert obj == {"metadata": {"x-a": ["1", "2"], "x-b": ["3"]}}
    obj = json.loads(encode_end_stream(ConnectError(Code.ABORTED, "m"), CIMultiDict()))
    assert obj == {"error": {"code": "aborted", "message": "m"}}


def test_split_unary_trailers() -> None:
    headers: CIMultiDict[str] = CIMultiDict(
        [("content-type", "application/proto"), ("Trailer-X", "1"), ("trailer-x", "2")]
    )
    plain, trailers = split_unary_trailers(headers)
    assert list(plain.items()) == [("content-type", "application/proto")]
    assert trailers.getall("x") == ["1", "2"]


def test_code_tables() -> None:
    assert len(Code) == 16
    assert Code.from_wire("deadline_exceeded") is Code.DEADLINE_EXCEEDED
    assert Code.from_grpc_value(14) is Code.UNAVAILABLE
    assert Code.CANCELED.http_status == 499
    assert code_from_http_status(502) is Code.UNAVAILABLE
    assert str(ConnectError(Code.INTERNAL, "x")) == "internal: x"


@pytest.mark.parametrize(
    "value", ["\u00b2", "\u0663", "1\u00b2", "\u0661\u0660", "", "12345678901", "-1", "1.5"]
)
def test_parse_timeout_accepts_only_ascii_digits(value: str) -> None:
    """An Arabic-Indic digit (U+0663) would otherwise be read as 3 ms, and a superscript
    two (U+00B2) make int() raise."""
    with pytest.raises(ConnectError) as info:
        parse_timeout(value)
    assert info.value.code is Code.INVALID_ARGUMENT


def test_parse_timeout_values() -> None:
    assert parse_timeout("0") == 0
    assert parse_timeout("1500") == 1.5
    assert parse_timeout("9999999999") == 9999999.999


# Bytes whose standard base64 is "+/+//g==": both characters that differ between the
# standard and URL-safe alphabets, and a padding character to drop.
AWKWARD = b"\xfb\xff\xbf\xfe"


def test_error_details_wire_form_is_exact() -> None:
    """Connect error JSON: details as unprefixed type names with standard, unpadded base64
    values (https://connectrpc.com/docs/protocol#error-end-stream)."""
    err = ConnectError(
        Code.NOT_FOUND, "gone", details=[ErrorDetail("google.protobuf.BytesValue", AWKWARD)]
    )
    expected = (
        b'{"code":"not_found","message":"gone","details":'
        b'[{"type":"google.protobuf.BytesValue","value":"+/+//g"}]}'
    )
    assert encode_error_json(err) == expected
    assert encode_end_stream(err, CIMultiDict()) == b'{"error":' + expected + b"}"


def test_error_details_accept_both_alphabets_and_padding() -> None:
    for value in ("+/+//g", "-_-__g", "+/+//g==", "-_-__g=="):
        body = json.dumps({"code": "aborted", "details": [{"type": "t.T", "value": value}]})
        detail = decode_error_json(body.encode(), 409).details[0]
        assert detail.value == AWKWARD, value
        assert detail.type_name == "t.T"


def test_get_message_uses_unpadded_url_safe_base64() -> None:
    query = get_query("proto", AWKWARD, None)
    assert query == "connect=v1&encoding=proto&base64=1&message=-_-__g"
