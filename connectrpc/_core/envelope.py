"""Length-prefixed message framing ("envelopes") used by streaming RPCs.

Every streaming Connect message, and every gRPC / gRPC-Web message, travels as::

    flags (1 byte) | length (4 bytes, big-endian) | data (length bytes)

Flag bits: ``0x01`` the data is compressed; ``0x02`` a Connect end-of-stream message;
``0x80`` a gRPC-Web trailers frame. See https://connectrpc.com/docs/protocol#streaming-request.

This module is pure: bytes in, frames out, no IO. ``MessageReader`` and ``encode_message``
are the one reader and writer of messages that every protocol uses.
"""

from __future__ import annotations

import struct

from connectrpc._core.buffer import ChunkBuffer
from connectrpc._core.code import Code
from connectrpc._core.compression import Compression, buffered_limit, decompress_message
from connectrpc._core.error import ConnectError

__all__ = [
    "FLAG_COMPRESSED",
    "FLAG_END_STREAM",
    "FLAG_GRPC_WEB_TRAILERS",
    "Envelope",
    "EnvelopeReader",
    "MessageReader",
    "encode_envelope",
    "encode_message",
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


def encode_message(data: bytes, compression: Compression | None) -> bytes:
    """Envelope one message, compressed (and flagged so) when ``compression`` is set.

    The writer every protocol shares: Connect streams, gRPC and gRPC-Web."""
    if compression is None:
        return encode_envelope(0, data)
    return encode_envelope(FLAG_COMPRESSED, compression.compress(data))


class MessageReader:
    """The reader every protocol shares: envelopes in, decompressed messages out.

    It owns the rules common to Connect streams, gRPC and gRPC-Web: which flags a peer may
    set (``FLAG_COMPRESSED``, plus the protocol's ``special`` end-of-stream or trailers
    flag), that a compressed frame needs a negotiated ``compression``, and the size
    ``limit``, checked on the declared frame size (with room for compression) and again
    after decompression. ``malformed`` is the code for a peer breaking these rules:
    ``invalid_argument`` when the peer is a client, ``internal`` when it is a server.

    ``feed`` returns ``(flags, payload)`` pairs: ``flags`` without the compressed bit (so
    ``0`` for a message, or the special flag), ``payload`` decompressed.
    """

    __slots__ = (
        "_compression",
        "_encoding_header",
        "_limit",
        "_malformed",
        "_prefix",
        "_reader",
        "_special",
    )

    def __init__(
        self,
        limit: int | None,
        compression: Compression | None,
        *,
        special: int,
        malformed: Code,
        encoding_header: str,
    ) -> None:
        self._limit = limit
        self._compression = compression
        self._special = special
        self._malformed = malformed
        self._reader = EnvelopeReader(buffered_limit(limit, compression is not None))
        self._prefix = "" if malformed is Code.INVALID_ARGUMENT else "protocol error: "
        self._encoding_header = encoding_header

    def feed(self, data: bytes) -> list[Envelope]:
        out: list[Envelope] = []
        for flags, payload in self._reader.feed(data):
            if flags & ~(FLAG_COMPRESSED | self._special):
                raise ConnectError(
                    self._malformed, f"{self._prefix}invalid envelope flags {flags:#04x}"
                )
            if flags & FLAG_COMPRESSED:
                if self._compression is None:
                    raise ConnectError(
                        Code.INTERNAL,
                        f"protocol error: compressed message without {self._encoding_header}",
                    )
                payload = decompress_message(
                    self._compression, payload, self._limit, self._malformed
                )
                flags &= ~FLAG_COMPRESSED
            elif self._limit is not None and len(payload) > self._limit:
                # Frames are admitted up to the compressed bound; an uncompressed one must
                # still fit the limit itself.
                raise ConnectError(
                    Code.RESOURCE_EXHAUSTED,
                    f"message size {len(payload)} is larger than the configured limit of "
                    f"{self._limit} bytes",
                )
            out.append((flags, payload))
        return out

    def incomplete_error(self) -> ConnectError | None:
        """The error to report if the body ended now, or ``None`` at a frame boundary."""
        error = self._reader.incomplete_error()
        if error is None or self._malformed is Code.INTERNAL:
            return error
        return ConnectError(self._malformed, error.message)
