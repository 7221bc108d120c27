"""Codecs: the exact JSON bytes, unknown JSON fields, and decode error messages.

Written to kill the mutants tools/mutation.sh found surviving in connectrpc._core.codec.
"""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2, wrappers_pb2

from connectrpc._core.codec import CODECS, CodecError


def test_json_encoding_is_compact_utf8() -> None:
    message = descriptor_pb2.FileDescriptorProto(name="é.proto", package="p")
    assert CODECS["json"].encode(message) == '{"name":"é.proto","package":"p"}'.encode()


def test_json_decoding_ignores_unknown_fields() -> None:
    got = CODECS["json"].decode(
        b'{"name":"a","future_field":1}', descriptor_pb2.FileDescriptorProto
    )
    assert got == descriptor_pb2.FileDescriptorProto(name="a")


def test_json_decode_error_message() -> None:
    with pytest.raises(CodecError) as info:
        CODECS["json"].decode(b'{"name":5}', descriptor_pb2.FileDescriptorProto)
    assert str(info.value).startswith("invalid JSON google.protobuf.FileDescriptorProto: ")


def test_proto_decode_error_message() -> None:
    with pytest.raises(CodecError) as info:
        CODECS["proto"].decode(b"\xff\xff\xff", wrappers_pb2.StringValue)
    assert str(info.value).startswith("invalid binary google.protobuf.StringValue: ")
