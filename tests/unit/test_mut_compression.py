"""Compression: exact limits, exact error messages, reproducible output, the registry.

Written to kill the mutants tools/mutation.sh found surviving in connectrpc._core.compression.
"""

from __future__ import annotations

import gzip
import os
import sys
import zlib

import pytest

from connectrpc._core import compression as _compression
from connectrpc.errors import Code, ConnectError

NAMES = ["gzip", "br", "zstd", "deflate", "snappy"]
DATA = os.urandom(300) + b"abc" * 300  # 1200 bytes, partly compressible


def _comp(name: str) -> _compression.Compression:
    comp = _compression.get(name)
    assert comp is not None
    return comp


def _unsized_zstd(data: bytes) -> bytes:
    """A zstd frame that does not declare its content size (as streaming writers make)."""
    import zstandard

    return zstandard.ZstdCompressor(write_content_size=False).compress(data)


def _compressed(name: str) -> list[bytes]:
    out = [_comp(name).compress(DATA)]
    if name == "zstd":
        out.append(_unsized_zstd(DATA))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_limit_is_inclusive_and_exact(name: str) -> None:
    for packed in _compressed(name):
        comp = _comp(name)
        assert comp.decompress(packed, len(DATA)) == DATA
        assert comp.decompress(packed, None) == DATA
        with pytest.raises(ConnectError) as info:
            comp.decompress(packed, len(DATA) - 1)
        assert (info.value.code, info.value.message) == (
            Code.RESOURCE_EXHAUSTED,
            f"decompressed message is larger than the configured limit of {len(DATA) - 1} bytes",
        )


@pytest.mark.parametrize("name", NAMES)
def test_corrupt_data_messages(name: str) -> None:
    with pytest.raises(ConnectError) as info:
        _compression.decompress_message(_comp(name), b"\xff" * 20, 1000, Code.INVALID_ARGUMENT)
    assert info.value.code is Code.INVALID_ARGUMENT
    assert info.value.message.startswith(f"failed to decompress message: invalid {name} data: ")


@pytest.mark.parametrize("name", NAMES)
def test_truncated_data_message(name: str) -> None:
    packed = _comp(name).compress(DATA)
    with pytest.raises(ConnectError) as info:
        _compression.decompress_message(
            _comp(name), packed[: len(packed) // 2], None, Code.INTERNAL
        )
    assert (info.value.code, info.value.message) == (
        Code.INTERNAL,
        f"failed to decompress message: truncated {name} data",
    )


def test_gzip_rejects_zlib_framing() -> None:
    with pytest.raises(_compression.DecompressError):
        _comp("gzip").decompress(zlib.compress(DATA), None)


def test_gzip_output_is_reproducible() -> None:
    packed = _comp("gzip").compress(DATA)
    assert packed[4:8] == b"\0\0\0\0"  # no timestamp: the same input gives the same bytes
    assert gzip.decompress(packed) == DATA


def test_registry_order_and_fresh_instances() -> None:
    registry = _compression._load()
    assert list(registry) == NAMES  # preferred first
    for name, comp in registry.items():
        assert comp.name == name
        assert comp.decompress(comp.compress(DATA), len(DATA)) == DATA


def test_registry_without_brotli_still_has_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "brotli", None)  # import brotli now raises ImportError
    assert list(_compression._load()) == ["gzip", "zstd", "deflate", "snappy"]


def test_uncompressed_message_limit() -> None:
    assert _compression.decompress_message(None, b"x" * 10, 10, Code.INTERNAL) == b"x" * 10
    assert _compression.decompress_message(None, b"x" * 11, None, Code.INTERNAL) == b"x" * 11
    with pytest.raises(ConnectError) as info:
        _compression.decompress_message(None, b"x" * 11, 10, Code.INTERNAL)
    assert (info.value.code, info.value.message) == (
        Code.RESOURCE_EXHAUSTED,
        "message size 11 is larger than the configured limit of 10 bytes",
    )


def test_buffered_limit() -> None:
    assert _compression.buffered_limit(None, True) is None
    assert _compression.buffered_limit(None, False) is None
    assert _compression.buffered_limit(100, False) == 100
    assert _compression.buffered_limit(100, True) == 2 * 100 + 65536


def test_unsized_zstd_far_over_the_limit() -> None:
    data = b"0123456789abcdef" * 12_500  # 200_000 bytes, in several 64 KiB reads
    with pytest.raises(ConnectError) as info:
        _comp("zstd").decompress(_unsized_zstd(data), 100_000)
    assert (info.value.code, info.value.message) == (
        Code.RESOURCE_EXHAUSTED,
        "decompressed message is larger than the configured limit of 100000 bytes",
    )


def test_unsized_zstd_corrupt_after_exactly_the_limit_is_corrupt() -> None:
    """Data that decodes to exactly ``limit`` bytes and then turns out corrupt is corrupt
    data, not a message over the limit."""
    import zstandard

    packed = _unsized_zstd(os.urandom(150_000))[:-1000]
    readable = 0
    reader = zstandard.ZstdDecompressor().stream_reader(packed)
    try:
        while chunk := reader.read(65536):
            readable += len(chunk)
    except zstandard.ZstdError:
        pass
    assert 0 < readable < 150_000
    with pytest.raises(_compression.DecompressError):
        _comp("zstd").decompress(packed, readable)
