"""Compression round trips and bounded decompression."""

from __future__ import annotations

import concurrent.futures
import os

import pytest

from connectrpc._core import compression as _compression
from connectrpc.errors import Code, ConnectError

NAMES = ["gzip", "br", "zstd", "deflate", "snappy"]


@pytest.mark.parametrize("name", NAMES)
def test_round_trip(name: str) -> None:
    comp = _compression.get(name)
    assert comp is not None
    for data in (b"", b"a", os.urandom(100_000), b"abc" * 50_000):
        assert comp.decompress(comp.compress(data), None) == data
        assert comp.decompress(comp.compress(data), len(data)) == data


@pytest.mark.parametrize("name", NAMES)
def test_bomb_is_stopped_at_the_limit(name: str) -> None:
    comp = _compression.get(name)
    assert comp is not None
    bomb = comp.compress(b"\0" * 50_000_000)
    # snappy tops out near 21:1 (its bound is the format's); the others pass 1000:1.
    assert len(bomb) < 50_000_000 / 20
    with pytest.raises(ConnectError) as info:
        comp.decompress(bomb, 1_000_000)
    assert info.value.code is Code.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("name", NAMES)
def test_corrupt_and_truncated_data(name: str) -> None:
    comp = _compression.get(name)
    assert comp is not None
    good = comp.compress(os.urandom(5000))
    with pytest.raises(_compression.DecompressError):
        comp.decompress(b"\x01\x02garbage", None)
    with pytest.raises(_compression.DecompressError):
        comp.decompress(good[: len(good) // 2], None)


def test_registry() -> None:
    assert _compression.get("identity") is None
    assert _compression.get("lz4") is None
    assert _compression.available() == ("gzip", "br", "zstd", "deflate", "snappy")


def _streamed_zstd(data: bytes, pieces: int) -> bytes:
    """zstd as a streaming compressor writes it: one frame with no declared content size."""
    import io

    import zstandard

    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False) as writer:
        for _ in range(pieces):
            writer.write(data)
    return out.getvalue()


def _bombs() -> list[tuple[str, bytes]]:
    zeros = b"\0" * (64 * 1024 * 1024)
    out = []
    for name in NAMES:
        comp = _compression.get(name)
        assert comp is not None
        out.append((name, comp.compress(zeros)))
    out.append(("zstd", _streamed_zstd(b"\0" * (4 * 1024 * 1024), 16)))
    return out


@pytest.mark.parametrize(
    ("name", "bomb"), _bombs(), ids=["gzip", "br", "zstd", "deflate", "snappy", "zstd-streamed"]
)
def test_bomb_memory_stays_near_the_limit(name: str, bomb: bytes) -> None:
    """A 64 MiB bomb against a 1 MiB limit must not allocate much more than the limit, and
    nothing of it may outlive the call (regression: zstd decompressed whole input slices,
    up to hundreds of MB, before checking the limit)."""
    import gc
    import tracemalloc

    comp = _compression.get(name)
    assert comp is not None
    limit = 1024 * 1024
    gc.collect()
    tracemalloc.start()
    try:
        with pytest.raises(ConnectError) as info:
            _compression.decompress_message(comp, bomb, limit, Code.INVALID_ARGUMENT)
        _, peak = tracemalloc.get_traced_memory()
        error = info.value
        del info
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.code is Code.RESOURCE_EXHAUSTED
    assert peak < 3 * limit, f"peak {peak} bytes for a {limit}-byte limit"
    # Holding the error (as a server does until it answers) holds nothing big.
    assert current < limit // 2, f"{current} bytes still allocated after the error"


def test_streamed_zstd_truncated_is_corrupt_not_too_large() -> None:
    data = _streamed_zstd(os.urandom(50_000), 1)
    comp = _compression.get("zstd")
    assert comp is not None
    assert comp.decompress(data, 50_000) == comp.decompress(data, None)
    with pytest.raises(ConnectError) as info:
        comp.decompress(data, 49_999)
    assert info.value.code is Code.RESOURCE_EXHAUSTED
    with pytest.raises(_compression.DecompressError):
        comp.decompress(data[:-10], 1_000_000)


def test_deflate_is_the_zlib_format() -> None:
    """HTTP and gRPC "deflate" is RFC 1950 (zlib), as peers such as connect-go send it."""
    import zlib

    comp = _compression.get("deflate")
    assert comp is not None
    assert comp.decompress(zlib.compress(b"hello" * 100), None) == b"hello" * 100
    assert zlib.decompress(comp.compress(b"hi" * 100)) == b"hi" * 100


def test_snappy_is_the_framing_format() -> None:
    """The conformance runner (Go's snappy.NewBufferedWriter) sends framed snappy: a stream
    identifier chunk, then checksummed data chunks."""
    comp = _compression.get("snappy")
    assert comp is not None
    framed = comp.compress(b"abc" * 50_000)
    assert framed.startswith(b"\xff\x06\x00\x00sNaPpY")
    assert comp.decompress(framed, 150_000) == b"abc" * 50_000


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\x06\x00\x00sNaPpY\x02\x01\x00\x00x",  # reserved unskippable chunk type
        b"\xff\x06\x00",  # truncated chunk header
        b"\xff\x06\x00\x00sNaP",  # truncated chunk
        b"\xff\x06\x00\x00sNaPpY\x01\x08\x00\x00\x00\x00\x00\x00abcd",  # bad checksum
    ],
)
def test_snappy_rejects_malformed_frames(data: bytes) -> None:
    comp = _compression.get("snappy")
    assert comp is not None
    with pytest.raises(_compression.DecompressError):
        comp.decompress(data, 1_000_000)


@pytest.mark.parametrize("name", NAMES)
def test_an_empty_compressed_message_is_empty(name: str) -> None:
    """Some encoders write nothing for an empty message (Go's zstd); it decodes as empty."""
    comp = _compression.get(name)
    assert comp is not None
    assert _compression.decompress_message(comp, b"", 10, Code.INVALID_ARGUMENT) == b""


@pytest.mark.parametrize("name", NAMES)
def test_threads_share_a_compression(name: str) -> None:
    """Threaded servers and the sync client share one instance per compression."""
    comp = _compression.get(name)
    assert comp is not None
    payloads = [os.urandom(20_000) + bytes([n]) * 30_000 for n in range(8)]

    def round_trips(data: bytes) -> bool:
        return all(comp.decompress(comp.compress(data), len(data)) == data for _ in range(50))

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert all(pool.map(round_trips, payloads))
