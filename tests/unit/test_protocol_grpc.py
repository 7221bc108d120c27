"""gRPC and gRPC-Web wire rules: timeouts, status fields, details, trailer frames."""

from __future__ import annotations

import base64

import pytest
from google.protobuf import wrappers_pb2
from multidict import CIMultiDict

from connectrpc._protocol.grpc import (
    decode_grpc_message,
    decode_status_details,
    decode_trailers_frame,
    encode_grpc_message,
    encode_status_details,
    encode_timeout,
    encode_trailers_frame,
    error_from_trailers,
    parse_grpc_content_type,
    parse_timeout,
    status_trailers,
)
from connectrpc.errors import Code, ConnectError, ErrorDetail


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1H", 3600),
        ("2M", 120),
        ("3S", 3),
        ("250m", 0.25),
        ("7u", 7e-6),
        ("99999999n", 0.099999999),
    ],
)
def test_parse_timeout_every_unit(value: str, seconds: float) -> None:
    assert parse_timeout(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value", ["", "1", "S", "123456789S", "1s", "1.5S", "-1S", "1 S", "\u0663S", "1\u00b2S"]
)
def test_parse_timeout_rejects_malformed(value: str) -> None:
    with pytest.raises(ConnectError) as info:
        parse_timeout(value)
    assert info.value.code is Code.INVALID_ARGUMENT
    assert "grpc-timeout" in info.value.message


def test_encode_timeout_rounds_up_within_eight_digits() -> None:
    assert encode_timeout(0.099) == "99000000n"
    assert encode_timeout(0.25) == "250000u"  # 250,000,000 ns would be 9 digits
    assert encode_timeout(1.5) == "1500000u"
    assert encode_timeout(1e-10) == "1n"
    assert encode_timeout(0) == "0n"
    assert encode_timeout(500) == "500000m"
    assert encode_timeout(1e6) == "1000000S"
    assert encode_timeout(1e9) == "16666667M"
    for seconds in (0.001, 0.3, 2.0, 123.456, 86400.0):
        assert parse_timeout(encode_timeout(seconds)) >= seconds


def test_grpc_message_percent_encoding() -> None:
    assert encode_grpc_message("plain text: ok") == "plain text: ok"
    assert encode_grpc_message("50% off") == "50%25 off"
    assert encode_grpc_message("caf\u00e9\n\u2603") == "caf%C3%A9%0A%E2%98%83"
    for text in ("50% off", "caf\u00e9\n\u2603", "\t", ""):
        assert decode_grpc_message(encode_grpc_message(text)) == text
    assert decode_grpc_message("bad %zz escape %4") == "bad %zz escape %4"


def test_status_details_round_trip() -> None:
    error = ConnectError(
        Code.NOT_FOUND,
        "gone",
        details=[wrappers_pb2.StringValue(value="why"), ErrorDetail("t.T", b"\x01\x02")],
    )
    value = encode_status_details(error)
    details = decode_status_details(value)
    assert [d.type_name for d in details] == ["google.protobuf.StringValue", "t.T"]
    assert details[0].unpack(wrappers_pb2.StringValue) == wrappers_pb2.StringValue(value="why")
    assert details[1].value == b"\x01\x02"
    # Unpadded and URL-safe forms are read too (peers vary).
    assert decode_status_details(value.rstrip("=")) == details
    with pytest.raises(ValueError, match="base64"):
        decode_status_details("!!!")


def test_status_fields_and_back() -> None:
    assert status_trailers(None) == [("grpc-status", "0")]
    error = ConnectError(Code.ABORTED, "try 100% again", details=[wrappers_pb2.Int32Value(value=7)])
    fields = CIMultiDict(status_trailers(error))
    assert fields["grpc-status"] == "10"
    assert fields["grpc-message"] == "try 100%25 again"
    back = error_from_trailers(fields)
    assert back is not None
    assert (back.code, back.message, back.wire) == (Code.ABORTED, "try 100% again", True)
    assert back.details[0].unpack(wrappers_pb2.Int32Value) == wrappers_pb2.Int32Value(value=7)
    assert error_from_trailers(CIMultiDict({"grpc-status": "0"})) is None
    unknown = error_from_trailers(CIMultiDict({"grpc-status": "99"}))
    assert unknown is not None
    assert unknown.code is Code.UNKNOWN


@pytest.mark.parametrize("fields", [{}, {"grpc-status": "x"}, {"grpc-status": "\u0663"}])
def test_missing_or_malformed_status_is_internal(fields: dict[str, str]) -> None:
    with pytest.raises(ConnectError) as info:
        error_from_trailers(CIMultiDict(fields))
    assert info.value.code is Code.INTERNAL


def test_trailers_frame() -> None:
    frame = encode_trailers_frame([("Grpc-Status", "0"), ("x-custom", "a b")])
    assert frame == b"grpc-status: 0\r\nx-custom: a b\r\n"
    assert decode_trailers_frame(frame) == [("grpc-status", "0"), ("x-custom", "a b")]
    with pytest.raises(ValueError, match="trailer line"):
        decode_trailers_frame(b"no colon here\r\n")


@pytest.mark.parametrize(
    ("content_type", "parsed"),
    [
        ("application/grpc", (False, "proto")),
        ("application/grpc+proto", (False, "proto")),
        ("Application/GRPC+json; charset=utf-8", (False, "json")),
        ("application/grpc-web", (True, "proto")),
        ("application/grpc-web+json", (True, "json")),
        ("application/grpc-web-text", None),
        ("application/proto", None),
        ("application/grpcx", None),
    ],
)
def test_content_types(content_type: str, parsed: tuple[bool, str] | None) -> None:
    assert parse_grpc_content_type(content_type) == parsed


def test_status_details_value_is_unpadded_standard_base64() -> None:
    """What the conformance suite checks: servers emit -bin values without padding."""
    error = ConnectError(Code.INTERNAL, "x", details=[ErrorDetail("t.T", b"\xfb\xff\xbf" * 10)])
    value = encode_status_details(error)
    assert "=" not in value
    assert "-" not in value
    assert "_" not in value
    assert base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
