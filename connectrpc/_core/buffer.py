"""A byte buffer whose memory is about the bytes it holds, however the peer splits them.

Network input arrives in chunks of any size, down to one byte per chunk from a hostile or
unlucky peer. Keeping each chunk as its own ``bytes`` object costs about 40 bytes of object
overhead per chunk, so 8 MiB sent a byte at a time would hold some 400 MB. ``ChunkBuffer``
keeps large chunks as they are (joined once, at the end: one copy however they were split)
and merges small ones into shared ``bytearray`` blocks as they arrive, so its footprint stays
within a few percent of its size.

Pure: no IO.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

__all__ = ["ChunkBuffer"]

# Chunks smaller than this are copied into a merge block rather than kept as objects.
_SMALL = 4096
# A merge block is closed once it reaches this size, so merging copies each byte once.
_BLOCK = 64 * 1024

Chunk = bytes | bytearray | memoryview


class ChunkBuffer:
    """A byte buffer: ``append`` chunks, then ``take`` them all as one ``bytes``, or
    ``pop_first`` them in order (a queue of body pieces)."""

    __slots__ = ("_chunks", "_open", "size")

    def __init__(self) -> None:
        self._chunks: collections.deque[Chunk] = collections.deque()
        self._open: bytearray | None = None  # the merge block still accepting small chunks
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return self.size > 0

    def append(self, data: Chunk) -> None:
        """Add ``data`` at the end."""
        n = len(data)
        if n == 0:
            return
        self.size += n
        if n >= _SMALL:
            self._open = None
            self._chunks.append(data)
            return
        block = self._open
        if block is None or len(block) >= _BLOCK:
            block = self._open = bytearray()
            self._chunks.append(block)
        block += data

    def take(self) -> bytes:
        """Everything appended so far, as one ``bytes``; the buffer is left empty."""
        chunks = self._chunks
        first = chunks[0] if len(chunks) == 1 else None
        out = first if isinstance(first, bytes) else b"".join(chunks)
        self.clear()
        return out

    def pop_first(self) -> bytes:
        """Remove and return the oldest piece (a large chunk, or a merged block)."""
        chunk = self._chunks.popleft()
        if chunk is self._open:
            self._open = None  # nothing more may be merged into a block handed out
        self.size -= len(chunk)
        return chunk if isinstance(chunk, bytes) else bytes(chunk)

    def chunks(self) -> Iterator[Chunk]:
        """The buffered pieces in order (without copying)."""
        return iter(self._chunks)

    def clear(self) -> None:
        self._chunks = collections.deque()
        self._open = None
        self.size = 0
