"""Envelope framing: any split of the byte stream gives the same frames."""

from __future__ import annotations

import pytest

from connectrpc._envelope import EnvelopeReader, encode_envelope
from connectrpc.errors import Code, ConnectError

FRAMES = [(0, b"hello"), (1, b""), (2, b"x" * 300), (0, bytes(range(256)) * 3)]
STREAM = b"".join(encode_envelope(f, d) for f, d in FRAMES)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, 1000, len(STREAM)])
def test_any_chunking_gives_the_same_frames(size: int) -> None:
    reader = EnvelopeReader()
    got = []
    for i in range(0, len(STREAM), size):
        got.extend(reader.feed(STREAM[i : i + size]))
    assert got == FRAMES
    assert reader.incomplete_error() is None


def test_every_split_point() -> None:
    for cut in range(len(STREAM) + 1):
        reader = EnvelopeReader()
        got = reader.feed(STREAM[:cut]) + reader.feed(STREAM[cut:])
        assert got == FRAMES, cut


def test_incomplete_prefix_and_body_are_reported() -> None:
    reader = EnvelopeReader()
    assert reader.feed(b"\x00\x00") == []
    err = reader.incomplete_error()
    assert err is not None
    assert "prefix" in err.message
    reader = EnvelopeReader()
    reader.feed(encode_envelope(0, b"abcdef")[:-2])
    err = reader.incomplete_error()
    assert err is not None
    assert "4 of 6" in err.message


def test_declared_size_over_limit_fails_on_the_prefix() -> None:
    reader = EnvelopeReader(max_size=10)
    with pytest.raises(ConnectError) as info:
        reader.feed(encode_envelope(0, b"x" * 11)[:5])
    assert info.value.code is Code.RESOURCE_EXHAUSTED
    assert reader.feed(b"") == []
    assert EnvelopeReader(max_size=10).feed(encode_envelope(0, b"x" * 10)) == [(0, b"x" * 10)]
