"""Length-prefixed message framing ("envelopes") used by streaming RPCs.

Every streaming Connect message, and every gRPC / gRPC-Web message, travels as::

    flags (1 byte) | length (4 bytes, big-endian) | data (length bytes)

Flag bits: ``0x01`` the data is compressed; ``0x02`` a Connect end-of-stream message;
``0x80`` a gRPC-Web trailers frame. See https://connectrpc.com/docs/protocol#streaming-request.

This module is pure: bytes in, frames out, no IO.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

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
    return _HEADER.pack(flags, len(data)) + data


@dataclass(frozen=True)
class Envelope:
    """One decoded frame; ``data`` is still compressed when ``flags & FLAG_COMPRESSED``."""

    flags: int
    data: bytes

    @property
    def compressed(self) -> bool:
        return bool(self.flags & FLAG_COMPRESSED)


class EnvelopeReader:
    """Incremental envelope decoder: ``feed`` it bytes as they arrive, get whole frames.

    ``max_size`` bounds the declared length of one frame, so a peer cannot make us buffer
    an arbitrarily large message: exceeding it raises ``resource_exhausted`` as soon as the
    5-byte prefix is seen, before the data arrives.
    """

    __slots__ = ("_buf", "_max_size")

    def __init__(self, max_size: int | None = None) -> None:
        self._buf = bytearray()
        self._max_size = max_size

    def feed(self, data: bytes) -> list[Envelope]:
        """Add ``data`` and return every frame it completes, in order."""
        buf = self._buf
        buf += data
        frames: list[Envelope] = []
        pos = 0
        end = len(buf)
        while end - pos >= HEADER_SIZE:
            flags, length = _HEADER.unpack_from(buf, pos)
            if self._max_size is not None and length > self._max_size:
                raise ConnectError(
                    Code.RESOURCE_EXHAUSTED,
                    f"message size {length} is larger than the configured limit of "
                    f"{self._max_size} bytes",
                )
            start = pos + HEADER_SIZE
            if end - start < length:
                break
            frames.append(Envelope(flags, bytes(buf[start : start + length])))
            pos = start + length
        if pos:
            del buf[:pos]
        return frames

    @property
    def buffered(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        return len(self._buf)

    def incomplete_error(self) -> ConnectError | None:
        """The error to report if the stream ended now, or ``None`` at a frame boundary."""
        n = len(self._buf)
        if n == 0:
            return None
        if n < HEADER_SIZE:
            return ConnectError(
                Code.INTERNAL,
                f"protocol error: stream ended inside an envelope prefix ({n} of 5 bytes)",
            )
        _, length = _HEADER.unpack_from(self._buf, 0)
        return ConnectError(
            Code.INTERNAL,
            f"protocol error: stream ended after {n - HEADER_SIZE} of {length} message bytes",
        )
