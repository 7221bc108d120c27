"""A small random mutator for the CI smoke test (the campaigns use libFuzzer's, via atheris).

It applies libFuzzer-like edits to seed inputs: bit flips, random or "interesting" bytes and
integers (0, 0xff, 0x7fffffff, ... at big-endian widths, as length prefixes use), inserted,
deleted, duplicated or spliced ranges, dictionary tokens, truncation. Deterministic for a
given ``random.Random``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

__all__ = ["mutate"]

_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF)
_TOKENS = (
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b":",
    b"HTTP/1.1 ",
    b"103 ",
    b"content-length: ",
    b"transfer-encoding: chunked",
    b'"code":',
    b'"message":',
    b'"details":[',
    b'"metadata":{',
    b'"error":{',
    b'"type":',
    b'"value":',
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b"\\u0000",
    b"\xb2",
    "\u0663".encode(),
    b"connect-timeout-ms: ",
    b"content-type: application/",
    b"connect+",
    b"gzip",
    b"&message=",
    b"&base64=1",
)


def mutate(data: bytes, corpus: Sequence[bytes], rng: random.Random) -> bytes:
    """``data`` with one to five random edits."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 5)):
        op = rng.randrange(10)
        pos = rng.randint(0, len(buf))
        if op == 0 and buf:
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 2:
            buf[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 3 and buf:
            end = min(len(buf), pos + rng.randint(1, 16))
            del buf[pos:end]
        elif op == 4 and buf:
            start = rng.randrange(len(buf))
            piece = buf[start : start + rng.randint(1, 64)]
            buf[pos:pos] = piece * rng.randint(1, 4)
        elif op == 5:
            width = rng.choice((1, 2, 4))
            value = rng.choice(_INTERESTING) & ((1 << (8 * width)) - 1)
            buf[pos : pos + width] = value.to_bytes(width, "big")
        elif op == 6 and corpus:
            other = rng.choice(corpus)
            cut = rng.randint(0, len(other))
            buf[pos:] = other[cut:]
        elif op == 7:
            buf[pos:pos] = rng.choice(_TOKENS)
        elif op == 8 and buf:
            del buf[rng.randint(0, len(buf)) :]
        elif op == 9 and buf:
            # The parameter bytes at the front choose limits, encodings and splits.
            buf[rng.randrange(min(len(buf), 8))] = rng.randrange(256)
    return bytes(buf)
