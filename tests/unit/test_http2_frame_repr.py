"""The faster frame repr HTTP2Transport installs gives hyperframe's exact output."""

from __future__ import annotations

import binascii

import hyperframe.frame
import pytest

import connectrpc._transports.http2 as http2


def _hyperframe_original(data: bytes | None) -> str:
    # What hyperframe's own function computes (hex of everything, then truncated).
    if not data:
        return "None"
    r = binascii.hexlify(data).decode("ascii")
    if len(r) > 20:
        r = r[:20] + "..."
    return "<hex:" + r + ">"


@pytest.mark.parametrize("size", [0, 1, 9, 10, 11, 12, 100, 1 << 20])
def test_same_string_as_hyperframe(size: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    assert http2._hex_prefix(data) == _hyperframe_original(data)
    assert http2._hex_prefix(None) == _hyperframe_original(None)


def test_installed() -> None:
    assert hyperframe.frame._raw_data_repr is http2._hex_prefix
    frame = hyperframe.frame.DataFrame(1, data=b"x" * 1000)
    assert "<hex:78787878787878787878...>" in repr(frame)
