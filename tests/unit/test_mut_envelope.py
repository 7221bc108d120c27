"""Envelope reader: the size limit wherever the prefix is split, and its exact message.

Written to kill the mutants tools/mutation.sh found surviving in connectrpc._core.envelope.
"""

from __future__ import annotations

import pytest

from connectrpc._core.envelope import EnvelopeReader, encode_envelope
from connectrpc.errors import Code, ConnectError


def test_limit_message() -> None:
    with pytest.raises(ConnectError) as info:
        EnvelopeReader(10).feed(encode_envelope(0, b"x" * 11))
    assert (info.value.code, info.value.message) == (
        Code.RESOURCE_EXHAUSTED,
        "message size 11 is larger than the configured limit of 10 bytes",
    )


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_limit_applies_to_a_split_prefix(cut: int) -> None:
    frame = encode_envelope(0, b"x" * 11)
    reader = EnvelopeReader(10)
    assert reader.feed(frame[:cut]) == []
    with pytest.raises(ConnectError) as info:
        reader.feed(frame[cut:])
    assert info.value.code is Code.RESOURCE_EXHAUSTED
    # Within the limit, the same split works.
    frame = encode_envelope(1, b"x" * 10)
    reader = EnvelopeReader(10)
    assert reader.feed(frame[:cut]) + reader.feed(frame[cut:]) == [(1, b"x" * 10)]


def test_incomplete_errors() -> None:
    reader = EnvelopeReader()
    reader.feed(encode_envelope(0, b"abc")[:2])
    err = reader.incomplete_error()
    assert err is not None
    assert err.message == "protocol error: stream ended inside an envelope prefix (2 of 5 bytes)"
    reader = EnvelopeReader()
    reader.feed(encode_envelope(0, b"abc")[:6])
    err = reader.incomplete_error()
    assert err is not None
    assert err.message == "protocol error: stream ended after 1 of 3 message bytes"
