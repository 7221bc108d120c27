"""Shared by the Python peers: random incompressible payload data."""

from __future__ import annotations

import os

# Random, incompressible data that payloads are cut from (the same scheme in every peer).
POOL = os.urandom(2 << 20)


def chunk(i: int, size: int) -> bytes:
    if size >= len(POOL):
        return os.urandom(size)
    off = (i * 64) % (len(POOL) - size)
    return POOL[off : off + size]
