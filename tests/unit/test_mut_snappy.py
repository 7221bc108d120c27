"""snappy's framing checks (declared sizes, chunk kinds, exact errors) and deflate.

Written against the survivors of tools/mutation.sh for connectrpc._core.compression.
"""

from __future__ import annotations

import zlib

import pytest

from connectrpc._core import compression as _compression
from connectrpc._core.compression import (
    DecompressError,
    _snappy_block_length,
    _snappy_framed_length,
)
from connectrpc.errors import Code, ConnectError

cramjam = pytest.importorskip("cramjam")

HEADER = b"\xff\x06\x00\x00sNaPpY"


def _snappy() -> _compression.Compression:
    comp = _compression.get("snappy")
    assert comp is not None
    return comp


def _chunk(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "little") + body


def _error(data: bytes) -> str:
    with pytest.raises(DecompressError) as info:
        _snappy_framed_length(data)
    return str(info.value)


@pytest.mark.parametrize("size", [0, 1, 127, 128, 300, 16384, 65536, 100_000])
def test_declared_length_of_real_streams(size: int) -> None:
    data = bytes(cramjam.snappy.compress(bytes(range(256)) * (size // 256) + b"z" * (size % 256)))
    assert _snappy_framed_length(data) == size


def test_block_length_varints() -> None:
    assert _snappy_block_length(b"\xac\x02") == 300
    assert _snappy_block_length(b"\xff\xff\x03") == 65535
    assert _snappy_block_length(b"\x80\x80\x80\x80\x01") == 1 << 28
    with pytest.raises(DecompressError) as info:
        _snappy_block_length(b"\x80\x80\x80\x80\x80\x01")
    assert str(info.value) == "invalid snappy data: bad block length"


def test_framed_length_chunk_kinds() -> None:
    # Uncompressed chunks: 4 bytes of checksum, then the data.
    assert _snappy_framed_length(HEADER + _chunk(0x01, b"crc!" + b"abc")) == 3
    # Padding and skippable chunks (0x80 and up) declare nothing.
    for kind in (0x80, 0xFE):
        assert _snappy_framed_length(HEADER + _chunk(kind, b"xy")) == 0
    assert _snappy_framed_length(HEADER + _chunk(0xFE, b"")) == 0
    assert _snappy_framed_length(HEADER + HEADER) == 0


def test_framed_length_errors() -> None:
    assert _error(HEADER[:4]) == "truncated snappy data"
    assert _error(HEADER + b"\x00\x00\x00") == "truncated snappy data"
    assert _error(b"\x00\x00\x00") == "invalid snappy data: no stream identifier"
    assert _error(HEADER + b"\xff\x06\x00\x00sNaPpZ") == (
        "invalid snappy data: bad stream identifier"
    )
    assert _error(HEADER + _chunk(0x02, b"")) == "invalid snappy data: reserved chunk type 0x02"
    assert _error(HEADER + _chunk(0x01, b"crc")) == (
        "invalid snappy data: a chunk of -1 bytes (at most 65536)"
    )
    assert _error(HEADER + _chunk(0x01, b"crc!" + b"a" * 65537)) == (
        "invalid snappy data: a chunk of 65537 bytes (at most 65536)"
    )
    assert _error(HEADER + _chunk(0x00, b"crc!\x80")) == "invalid snappy data: bad block length"


def test_corrupt_snappy_is_a_decompress_error() -> None:
    data = bytearray(cramjam.snappy.compress(b"a" * 300))
    data[14] ^= 0xFF  # the chunk's checksum
    with pytest.raises(DecompressError) as info:
        _snappy().decompress(bytes(data), None)
    assert str(info.value).startswith("invalid snappy data: ")
    assert "checksum" in str(info.value)


def test_snappy_limit_on_declared_size() -> None:
    data = _snappy().compress(b"a" * 300)
    assert _snappy().decompress(data, 300) == b"a" * 300
    with pytest.raises(ConnectError) as info:
        _snappy().decompress(data, 299)
    assert (info.value.code, info.value.message) == (
        Code.RESOURCE_EXHAUSTED,
        "decompressed message is larger than the configured limit of 299 bytes",
    )


def test_deflate_is_zlib_format() -> None:
    deflate = _compression.get("deflate")
    assert deflate is not None
    data = deflate.compress(b"hello " * 10)
    assert zlib.decompress(data) == b"hello " * 10
    assert deflate.decompress(zlib.compress(b"x" * 10), 10) == b"x" * 10


def test_a_fresh_snappy_reports_corrupt_data() -> None:
    # The registry's instance is built at import; build one here too.
    data = bytearray(cramjam.snappy.compress(b"a" * 300))
    data[14] ^= 0xFF
    with pytest.raises(DecompressError, match=r"^invalid snappy data: "):
        _compression._Snappy().decompress(bytes(data), None)
