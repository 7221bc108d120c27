"""ChunkBuffer: the bytes back in order, at about their own cost however they were split."""

from __future__ import annotations

import tracemalloc

from connectrpc._core.buffer import ChunkBuffer


def test_take_returns_everything_in_order_and_empties() -> None:
    buf = ChunkBuffer()
    assert not buf
    assert buf.take() == b""
    parts: list[bytes | bytearray | memoryview] = [
        b"a",
        b"",
        b"bc" * 3000,
        bytearray(b"d"),
        memoryview(b"xyz")[1:],
        b"e" * 10,
    ]
    for part in parts:
        buf.append(part)
    expected = b"".join(bytes(p) for p in parts)
    assert len(buf) == buf.size == len(expected)
    assert buf
    assert buf.take() == expected
    assert buf.size == 0
    assert buf.take() == b""


def test_one_large_bytes_chunk_is_returned_as_is() -> None:
    big = b"z" * 100_000
    buf = ChunkBuffer()
    buf.append(big)
    assert buf.take() is big


def test_small_chunks_are_merged() -> None:
    buf = ChunkBuffer()
    pieces = [bytes([i % 256]) for i in range(300_000)]
    tracemalloc.start()
    try:
        for piece in pieces:
            buf.append(piece)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(list(buf.chunks())) <= 300_000 // (64 * 1024) + 1
    assert held < 1.3 * 300_000
    assert buf.take() == b"".join(pieces)


def test_pop_first_hands_out_pieces_in_order_and_closes_the_open_block() -> None:
    buf = ChunkBuffer()
    big = b"B" * 5000
    buf.append(b"a")
    buf.append(b"b")
    buf.append(big)
    buf.append(b"c")
    assert buf.pop_first() == b"ab"  # small pieces merged into one block
    assert buf.pop_first() is big
    assert buf.size == 1
    first = buf.pop_first()
    assert first == b"c"
    assert isinstance(first, bytes)
    buf.append(b"d")  # a new block, not the one handed out
    assert first == b"c"
    assert buf.take() == b"d"
    assert buf.size == 0
