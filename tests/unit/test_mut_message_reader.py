"""MessageReader: size limits with and without compression, codes and message prefixes.

Written against the survivors of tools/mutation.sh for connectrpc._core.envelope.
"""

from __future__ import annotations

import gzip

import pytest

from connectrpc._core import compression as _compression
from connectrpc._core.envelope import EnvelopeReader, MessageReader, encode_envelope
from connectrpc.errors import Code, ConnectError

GZIP = _compression.get("gzip")
assert GZIP is not None


def _reader(
    limit: int | None, compression: _compression.Compression | None, malformed: Code
) -> MessageReader:
    return MessageReader(
        limit, compression, special=0x02, malformed=malformed, encoding_header="x-enc"
    )


def test_compressed_frames_may_exceed_the_limit_before_decompression() -> None:
    data = gzip.compress(b"a" * 5)
    assert len(data) > 10
    reader = _reader(10, GZIP, Code.INTERNAL)
    assert reader.feed(encode_envelope(1, data)) == [(0, b"aaaaa")]


def test_uncompressed_frames_must_fit_the_limit() -> None:
    reader = _reader(10, GZIP, Code.INTERNAL)
    assert reader.feed(encode_envelope(0, b"b" * 10)) == [(0, b"b" * 10)]
    assert reader.feed(encode_envelope(0x02, b"")) == [(0x02, b"")]
    with pytest.raises(ConnectError) as info:
        reader.feed(encode_envelope(0, b"b" * 11))
    assert (info.value.code, info.value.message) == (
        Code.RESOURCE_EXHAUSTED,
        "message size 11 is larger than the configured limit of 10 bytes",
    )
    plain = _reader(10, None, Code.INTERNAL)
    assert plain.feed(encode_envelope(0, b"c" * 10)) == [(0, b"c" * 10)]


@pytest.mark.parametrize(
    ("malformed", "prefix"),
    [(Code.INVALID_ARGUMENT, ""), (Code.INTERNAL, "protocol error: ")],
)
def test_invalid_flags_message(malformed: Code, prefix: str) -> None:
    reader = _reader(None, None, malformed)
    with pytest.raises(ConnectError) as info:
        reader.feed(encode_envelope(0x04, b""))
    assert (info.value.code, info.value.message) == (
        malformed,
        f"{prefix}invalid envelope flags 0x04",
    )


@pytest.mark.parametrize("malformed", [Code.INVALID_ARGUMENT, Code.INTERNAL])
def test_incomplete_error_keeps_the_message(malformed: Code) -> None:
    reader = _reader(None, None, malformed)
    envelope = EnvelopeReader()
    for r in (reader, envelope):
        r.feed(b"\x00\x00\x00\x00\x05ab")
    expected = envelope.incomplete_error()
    assert expected is not None
    error = reader.incomplete_error()
    assert error is not None
    assert (error.code, error.message) == (malformed, expected.message)
    assert error.message == "protocol error: stream ended after 2 of 5 message bytes"
