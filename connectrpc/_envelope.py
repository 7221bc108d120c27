"""Length-prefixed message framing ("envelopes") used by streaming RPCs.

Every streaming Connect message, and every gRPC / gRPC-Web message, travels as::

    flags (1 byte) | length (4 bytes, big-endian) | data (length bytes)

Flag bits: ``0x01`` the data is compressed; ``0x02`` a Connect end-of-stream message;
``0x80`` a gRPC-Web trailers frame. See https://connectrpc.com/docs/protocol#streaming-request.

This module is pure: bytes in, frames out, no IO.
"""

from __future__ import annotations

import struct

from ._buffer import ChunkBuffer
from ._code import Code
from ._error import ConnectError

__all__ = [
    "FLAG_COMPRESSED",
    "FLAG_END_STREAM",
    "FLAG_GRPC_WEB_TRAILERS",
    "Envelope",
    "EnvelopeReader",
    "encode_envelope",
]

FLAG_COMPRESSED = 0x01
FLAG_END_STREAM = 0x02
FLAG_GRPC_WEB_TRAILERS = 0x80

_HEADER = struct.Struct(">BI")
HEADER_SIZE = _HEADER.size


def encode_envelope(flags: int, data: bytes) -> bytes:
    """Frame ``data`` with its flags and length prefix."""
    return b"".join((_HEADER.pack(flags, len(data)), data))


Envelope = tuple[int, bytes]
"""One decoded frame: ``(flags, data)``; ``data`` is still compressed if flagged so."""


class EnvelopeReader:
    """Incremental envelope decoder: ``feed`` it bytes as they arrive, get whole frames.

    ``max_size`` bounds the declared length of one frame, so a peer cannot make us buffer
    an arbitrarily large message: exceeding it raises ``resource_exhausted`` as soon as the
    5-byte prefix is seen, before the data arrives.

    The data of an incomplete frame is held in a ``ChunkBuffer`` and joined once, when the
    frame is complete: a large message costs one copy however it was split, and a message
    sent in tiny chunks costs about its own size, not an object per chunk. Chunks passed to
    ``feed`` must not be mutated afterwards (pieces of them may be kept without copying).
    """

    __slots__ = ("_data", "_flags", "_length", "_max_size", "_prefix")

    def __init__(self, max_size: int | None = None) -> None:
        self._max_size = max_size
        self._prefix = bytearray()  # an incomplete 5-byte prefix
        self._flags = 0
        self._length = -1  # declared length of the frame being collected; -1 when none
        self._data = ChunkBuffer()  # what has arrived of that frame's data

    def _check_size(self, length: int) -> None:
        max_size = self._max_size
        if max_size is not None and length > max_size:
            raise ConnectError(
                Code.RESOURCE_EXHAUSTED,
                f"message size {length} is larger than the configured limit of {max_size} bytes",
            )

    def feed(self, data: bytes) -> list[Envelope]:
        """Add ``data`` and return every frame it completes, in order."""
        frames: list[Envelope] = []
        pos = 0
        n = len(data)
        prefix = self._prefix
        if prefix:
            pos = min(HEADER_SIZE - len(prefix), n)
            prefix += data[:pos]
            if len(prefix) < HEADER_SIZE:
                return frames
            flags, length = _HEADER.unpack(prefix)
            prefix.clear()
            self._check_size(length)
            self._flags, self._length = flags, length
        if self._length >= 0:
            # Complete the frame whose prefix arrived earlier.
            buffered = self._data
            end = pos + self._length - buffered.size
            if end > n:
                buffered.append(memoryview(data)[pos:] if pos else data)
                return frames
            buffered.append(memoryview(data)[pos:end])
            frames.append((self._flags, buffered.take()))
            self._length = -1
            pos = end
        unpack = _HEADER.unpack_from
        while n - pos >= HEADER_SIZE:
            flags, length = unpack(data, pos)
            self._check_size(length)
            start = pos + HEADER_SIZE
            end = start + length
            if end > n:
                self._flags, self._length = flags, length
                self._data.append(memoryview(data)[start:])
                return frames
            frames.append((flags, data[start:end]))
            pos = end
        if pos < n:
            prefix += data[pos:]
        return frames

    @property
    def buffered(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        if self._length >= 0:
            return HEADER_SIZE + self._data.size
        return len(self._prefix)

    def incomplete_error(self) -> ConnectError | None:
        """The error to report if the stream ended now, or ``None`` at a frame boundary."""
        if self._length >= 0:
            return ConnectError(
                Code.INTERNAL,
                f"protocol error: stream ended after {self._data.size} of "
                f"{self._length} message bytes",
            )
        n = len(self._prefix)
        if n == 0:
            return None
        return ConnectError(
            Code.INTERNAL,
            f"protocol error: stream ended inside an envelope prefix ({n} of 5 bytes)",
        )
