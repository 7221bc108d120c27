"""ChunkBuffer: which chunks are kept as they are, when merge blocks close, and take().

Written against the survivors of tools/mutation.sh for connectrpc._core.buffer.
"""

from __future__ import annotations

from connectrpc._core.buffer import ChunkBuffer


def test_one_byte_is_truthy() -> None:
    buf = ChunkBuffer()
    assert not buf
    buf.append(b"x")
    assert buf
    assert len(buf) == 1


def test_a_chunk_of_exactly_the_small_bound_is_kept_as_is() -> None:
    buf = ChunkBuffer()
    data = b"x" * 4096
    buf.append(data)
    assert [c is data for c in buf.chunks()] == [True]
    small = b"y" * 4095
    buf.append(small)
    assert [len(c) for c in buf.chunks()] == [4096, 4095]
    assert [c is small for c in buf.chunks()] == [False, False]  # copied into a block


def test_a_full_merge_block_is_closed() -> None:
    buf = ChunkBuffer()
    for _ in range(16):
        buf.append(b"a" * 4095)
    buf.append(b"b" * 16)  # the block now holds exactly 64 KiB
    assert [len(c) for c in buf.chunks()] == [65536]
    buf.append(b"c")
    assert [len(c) for c in buf.chunks()] == [65536, 1]
    assert buf.take() == b"a" * 65520 + b"b" * 16 + b"c"


def test_take_joins_two_large_chunks() -> None:
    buf = ChunkBuffer()
    first, second = b"1" * 5000, b"2" * 5000
    buf.append(first)
    buf.append(second)
    assert buf.take() == first + second
    assert len(buf) == 0
    buf.append(first)
    assert buf.take() is first  # a single bytes chunk is returned without a copy
