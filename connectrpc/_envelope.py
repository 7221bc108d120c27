"""Length-prefixed message framing ("envelopes") used by streaming RPCs.

Every streaming Connect message, and every gRPC / gRPC-Web message, travels as::

    flags (1 byte) | length (4 bytes, big-endian) | data (length bytes)

Flag bits: ``0x01`` the data is compressed; ``0x02`` a Connect end-of-stream message;
``0x80`` a gRPC-Web trailers frame. See https://connectrpc.com/docs/protocol#streaming-request.

This module is pure: bytes in, frames out, no IO.
"""

from __future__ import annotations

import struct

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

    Bytes of an incomplete frame are kept as a list of the chunks received and joined once,
    when the frame is complete, so a large message costs one copy however it was split.
    """

    __slots__ = ("_max_size", "_need", "_pending", "_pending_len")

    def __init__(self, max_size: int | None = None) -> None:
        self._max_size = max_size
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._need = HEADER_SIZE  # bytes the pending frame needs before it can be parsed

    def feed(self, data: bytes) -> list[Envelope]:
        """Add ``data`` and return every frame it completes, in order."""
        pending = self._pending
        frames: list[Envelope] = []
        if pending:
            pending.append(data)
            self._pending_len += len(data)
            need = self._need
            if self._pending_len < need:
                return frames
            if need == HEADER_SIZE:
                data = b"".join(pending)
            else:
                # A frame whose header arrived earlier is now complete: join just its payload
                # (one copy), and go on with whatever follows it in the last chunk.
                flags, _ = _HEADER.unpack_from(pending[0], 0)
                last = pending[-1]
                cut = len(last) - (self._pending_len - need)
                pending[-1] = last[:cut]
                pending[0] = pending[0][HEADER_SIZE:]
                frames.append((flags, b"".join(pending)))
                data = last[cut:]
            pending.clear()
            self._pending_len = 0
            self._need = HEADER_SIZE
        pos = 0
        n = len(data)
        need = HEADER_SIZE
        unpack = _HEADER.unpack_from
        max_size = self._max_size
        while n - pos >= HEADER_SIZE:
            flags, length = unpack(data, pos)
            if max_size is not None and length > max_size:
                raise ConnectError(
                    Code.RESOURCE_EXHAUSTED,
                    f"message size {length} is larger than the configured limit of "
                    f"{max_size} bytes",
                )
            end = pos + HEADER_SIZE + length
            if end > n:
                need = HEADER_SIZE + length
                break
            frames.append((flags, data[pos + HEADER_SIZE : end]))
            pos = end
        if pos < n:
            rest = data[pos:] if pos else data
            pending.append(rest)
            self._pending_len = len(rest)
            self._need = need
        return frames

    @property
    def buffered(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        return self._pending_len

    def incomplete_error(self) -> ConnectError | None:
        """The error to report if the stream ended now, or ``None`` at a frame boundary."""
        n = self._pending_len
        if n == 0:
            return None
        if n < HEADER_SIZE:
            return ConnectError(
                Code.INTERNAL,
                f"protocol error: stream ended inside an envelope prefix ({n} of 5 bytes)",
            )
        return ConnectError(
            Code.INTERNAL,
            f"protocol error: stream ended after {n - HEADER_SIZE} of "
            f"{self._need - HEADER_SIZE} message bytes",
        )
