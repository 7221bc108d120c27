"""Compression round trips and bounded decompression."""

from __future__ import annotations

import os

import pytest

from connectrpc import _compression
from connectrpc.errors import Code, ConnectError

NAMES = ["gzip", "br", "zstd"]


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
    assert len(bomb) < 100_000
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
    assert _compression.get("snappy") is None
    assert set(_compression.available()) == set(NAMES)
