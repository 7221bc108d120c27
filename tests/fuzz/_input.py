"""Turning one fuzzer-supplied byte string into structured choices.

Each target reads a few *parameter* bytes from the front of its input (a limit, an encoding,
how to split the rest into chunks) and treats what is left as the payload. Reading past the
end yields zeros, so every byte string is a valid input and the fuzzer's mutations of the
payload do not disturb the parameters. The encoding is deliberately simple so that the seed
corpus can be written by hand (see ``tests/fuzz/gen_corpus.py``).

This module is independent of atheris: the CI smoke test (plain pytest) and the
coverage-guided campaigns (``tools/fuzz.sh``) feed the targets the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

__all__ = ["FuzzInput", "split_chunks"]

T = TypeVar("T")

_MAX_BYTEWISE = 16384


class FuzzInput:
    """A cursor over the fuzzer's bytes: parameters from the front, then the payload."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def byte(self) -> int:
        """One byte, 0 once the input is exhausted."""
        pos = self._pos
        if pos >= len(self._data):
            return 0
        self._pos = pos + 1
        return self._data[pos]

    def uint(self, nbytes: int) -> int:
        """A big-endian unsigned integer of ``nbytes`` bytes."""
        value = 0
        for _ in range(nbytes):
            value = (value << 8) | self.byte()
        return value

    def flag(self) -> bool:
        return bool(self.byte() & 1)

    def choice(self, options: Sequence[T]) -> T:
        """One of ``options``, chosen by one byte."""
        return options[self.byte() % len(options)]

    def take(self, n: int) -> bytes:
        """The next ``n`` bytes (fewer at the end of the input)."""
        out = self._data[self._pos : self._pos + n]
        self._pos += len(out)
        return out

    def line(self, limit: int = 4096) -> bytes | None:
        """Bytes up to the next ``\\n`` (not included); ``None`` when the input is exhausted."""
        data = self._data
        if self._pos >= len(data):
            return None
        end = data.find(b"\n", self._pos, self._pos + limit)
        if end < 0:
            end = min(len(data), self._pos + limit)
            out = data[self._pos : end]
            self._pos = end
            return out
        out = data[self._pos : end]
        self._pos = end + 1
        return out

    def rest(self) -> bytes:
        """Everything not read yet."""
        out = self._data[self._pos :]
        self._pos = len(self._data)
        return out


def split_chunks(payload: bytes, seed: int) -> list[bytes]:
    """Split ``payload`` the way ``seed`` (one fuzzer-chosen byte) says.

    0: one chunk; 1: one byte at a time; 2: an empty chunk before every byte;
    otherwise pseudo-random cut points (seeded, so an input always splits the same way),
    chunk sizes between 1 and ``seed``, with some empty chunks mixed in.
    """
    if seed == 0 or not payload:
        return [payload]
    if seed <= 2 and len(payload) > _MAX_BYTEWISE:
        seed = 3  # keep large payloads to a sane number of chunks
    if seed == 1:
        return [payload[i : i + 1] for i in range(len(payload))]
    if seed == 2:
        out: list[bytes] = []
        for i in range(len(payload)):
            out += [b"", payload[i : i + 1]]
        return out
    rng = random.Random(seed)
    if len(payload) // seed > _MAX_BYTEWISE:
        seed = len(payload) // _MAX_BYTEWISE + 1
    chunks: list[bytes] = []
    pos = 0
    while pos < len(payload):
        if rng.random() < 0.05:
            chunks.append(b"")
        size = rng.randint(1, seed)
        chunks.append(payload[pos : pos + size])
        pos += size
    return chunks
