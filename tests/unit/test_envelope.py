"""Envelope framing: any split of the byte stream gives the same frames."""

from __future__ import annotations

import pytest

from connectrpc._core.envelope import EnvelopeReader, encode_envelope
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


def test_one_byte_chunks_cost_about_the_bytes_buffered() -> None:
    """Regression: each chunk of an incomplete frame was kept as its own object (about 40
    bytes each), so a message fed a byte at a time cost some forty times its size."""
    import tracemalloc

    data = encode_envelope(0, b"m" * 200_000)
    pieces = [data[i : i + 1] for i in range(len(data))]
    reader = EnvelopeReader()
    tracemalloc.start()
    try:
        for piece in pieces[:-1]:
            assert reader.feed(piece) == []
        held, _ = tracemalloc.get_traced_memory()
        frames = reader.feed(pieces[-1])
    finally:
        tracemalloc.stop()
    assert frames == [(0, b"m" * 200_000)]
    assert held < 1.5 * len(data), f"{held} bytes held for {len(data)} bytes buffered"
    assert reader.buffered == 0


def test_large_chunks_are_kept_without_copying_until_the_frame_completes() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    data = encode_envelope(1, payload) + encode_envelope(0, b"tail")
    reader = EnvelopeReader()
    assert reader.feed(data[:300_000]) == []
    assert reader.buffered == 300_000
    assert reader.feed(data[300_000:700_000]) == []
    assert reader.feed(data[700_000:]) == [(1, payload), (0, b"tail")]
    assert reader.incomplete_error() is None
