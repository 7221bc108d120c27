"""Message compression: identity, gzip, deflate, and optionally br, zstd and snappy.

Names are the HTTP content-coding tokens used in ``content-encoding`` /
``connect-content-encoding`` / ``grpc-encoding`` and their ``accept-`` counterparts.
Decompression is always bounded: ``decompress`` stops as soon as the output would exceed
the caller's limit (each algorithm is given an output bound, never checked only after the
fact), so a small "zip bomb" costs at most about the limit in memory, and nothing of it
outlives the call.
"""

from __future__ import annotations

import abc
import gzip
import zlib
from typing import TYPE_CHECKING

from connectrpc._core.code import Code
from connectrpc._core.error import ConnectError, detached

if TYPE_CHECKING:
    import zstandard

__all__ = [
    "IDENTITY",
    "Compression",
    "DecompressError",
    "available",
    "buffered_limit",
    "decompress_message",
    "for_request",
    "for_response",
    "get",
]

IDENTITY = "identity"


class DecompressError(Exception):
    """The compressed data is corrupt or truncated."""


def _too_large(limit: int) -> ConnectError:
    return ConnectError(
        Code.RESOURCE_EXHAUSTED,
        f"decompressed message is larger than the configured limit of {limit} bytes",
    )


class Compression(abc.ABC):
    """One compression algorithm."""

    name: str

    @abc.abstractmethod
    def compress(self, data: bytes) -> bytes: ...

    @abc.abstractmethod
    def decompress(self, data: bytes, limit: int | None) -> bytes:
        """Decompress ``data``; raise ``resource_exhausted`` if it exceeds ``limit`` bytes."""


class _Zlib(Compression):
    """DEFLATE data in one of zlib's containers (``wbits`` picks which)."""

    wbits: int

    def decompress(self, data: bytes, limit: int | None) -> bytes:
        d = zlib.decompressobj(self.wbits)
        try:
            # max_length bounds the output: a bomb stops at limit + 1 bytes.
            out = d.decompress(data, 0 if limit is None else limit + 1)
        except zlib.error as exc:
            raise DecompressError(f"invalid {self.name} data: {exc}") from exc
        if limit is not None and len(out) > limit:
            raise _too_large(limit)
        if not d.eof:
            raise DecompressError(f"truncated {self.name} data")
        return out


class _Gzip(_Zlib):
    """gzip (RFC 1952)."""

    name = "gzip"
    wbits = 16 + zlib.MAX_WBITS

    def compress(self, data: bytes) -> bytes:
        return gzip.compress(data, compresslevel=6, mtime=0)


class _Deflate(_Zlib):
    """HTTP's "deflate", which is DEFLATE in the zlib format (RFC 1950), not raw RFC 1951
    data; gRPC uses the name the same way."""

    name = "deflate"
    wbits = zlib.MAX_WBITS

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data, 6)


class _Brotli(Compression):
    name = "br"

    def __init__(self) -> None:
        import brotli  # type: ignore[import-untyped]

        self._brotli = brotli

    def compress(self, data: bytes) -> bytes:
        return bytes(self._brotli.compress(data, quality=4))

    def decompress(self, data: bytes, limit: int | None) -> bytes:
        d = self._brotli.Decompressor()
        try:
            if limit is None:
                out = bytes(d.process(data))
            else:
                out = bytes(d.process(data, output_buffer_limit=limit + 1))
                if len(out) > limit:
                    raise _too_large(limit)
        except self._brotli.error as exc:
            raise DecompressError(f"invalid br data: {exc}") from exc
        if not d.is_finished():
            raise DecompressError("truncated br data")
        return out


class _Zstd(Compression):
    name = "zstd"

    # python-zstandard's compressor and decompressor objects must not be used by two threads
    # at once (threaded WSGI servers, the sync client), and making one per message costs
    # more than the message. So idle ones wait in a stack: list.pop and list.append are
    # atomic, so a thread always takes one nobody else is using, and a new one is made
    # only when every other is busy.

    def __init__(self) -> None:
        import zstandard

        self._zstd = zstandard
        self._compressors: list[zstandard.ZstdCompressor] = []
        self._decompressors: list[zstandard.ZstdDecompressor] = []

    def compress(self, data: bytes) -> bytes:
        try:
            compressor = self._compressors.pop()
        except IndexError:
            compressor = self._zstd.ZstdCompressor(level=3)
        try:
            return compressor.compress(data)
        finally:
            self._compressors.append(compressor)

    def decompress(self, data: bytes, limit: int | None) -> bytes:
        try:
            d = self._decompressors.pop()
        except IndexError:
            d = self._zstd.ZstdDecompressor()
        try:
            return self._decompress(d, data, limit)
        finally:
            self._decompressors.append(d)

    def _decompress(self, d: zstandard.ZstdDecompressor, data: bytes, limit: int | None) -> bytes:
        zstd = self._zstd
        try:
            if limit is None:
                obj = d.decompressobj()
                out = obj.decompress(data)
                if not obj.eof:
                    raise DecompressError("truncated zstd data")
                return out
            size = zstd.get_frame_parameters(data).content_size
            if size != zstd.CONTENTSIZE_UNKNOWN:
                # The frame declares its size: refuse a bomb before decompressing anything.
                if size > limit:
                    raise _too_large(limit)
                return d.decompress(data)
            try:
                # Output is bounded by max_output_size; pages past what is written are never
                # touched, so this costs about the decompressed size.
                out = d.decompress(data, max_output_size=limit + 1)
            except zstd.ZstdError:
                # Either corrupt or truncated, or larger than the limit: tell them apart with
                # a bounded read, which stops as soon as the output passes the limit.
                reader = d.stream_reader(data)
                total = 0
                while chunk := reader.read(65536):
                    total += len(chunk)
                    if total > limit:
                        raise _too_large(limit) from None
                raise
        except zstd.ZstdError as exc:
            raise DecompressError(f"invalid zstd data: {exc}") from exc
        if len(out) > limit:
            raise _too_large(limit)
        return out


# The snappy framing format (https://github.com/google/snappy/blob/main/framing_format.txt):
# chunks of type (1 byte), length (3 bytes, little-endian) and data; each data chunk holds at
# most 65,536 bytes uncompressed, after a 4-byte checksum.
_SNAPPY_CHUNK_MAX = 65536
_SNAPPY_COMPRESSED = 0x00
_SNAPPY_UNCOMPRESSED = 0x01
_SNAPPY_STREAM_ID = 0xFF
_SNAPPY_STREAM_HEADER = b"\xff\x06\x00\x00sNaPpY"


def _snappy_block_length(block: bytes | memoryview) -> int:
    """The uncompressed length a raw snappy block declares (its leading varint)."""
    length = 0
    for i in range(min(5, len(block))):
        byte = block[i]
        length |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            return length
    raise DecompressError("invalid snappy data: bad block length")


def _snappy_framed_length(data: bytes) -> int:
    """The total uncompressed length declared by a framed snappy stream, checked chunk by
    chunk without decompressing anything."""
    if not data:
        return 0  # how snappy frames an empty message
    if not data.startswith(_SNAPPY_STREAM_HEADER[: len(data)]) or len(data) < 4:
        raise DecompressError("invalid snappy data: no stream identifier")
    view = memoryview(data)
    pos, total, n = 0, 0, len(data)
    while pos < n:
        if n - pos < 4:
            raise DecompressError("truncated snappy data")
        kind = view[pos]
        length = int.from_bytes(view[pos + 1 : pos + 4], "little")
        body = view[pos + 4 : pos + 4 + length]
        if len(body) < length:
            raise DecompressError("truncated snappy data")
        if kind == _SNAPPY_COMPRESSED:
            size = _snappy_block_length(body[4:])
        elif kind == _SNAPPY_UNCOMPRESSED:
            size = length - 4
        elif kind == _SNAPPY_STREAM_ID:
            if body != _SNAPPY_STREAM_HEADER[4:]:
                raise DecompressError("invalid snappy data: bad stream identifier")
            size = 0
        elif kind >= 0x80:
            size = 0  # padding and skippable chunks
        else:
            raise DecompressError(f"invalid snappy data: reserved chunk type {kind:#04x}")
        if size > _SNAPPY_CHUNK_MAX or size < 0:
            raise DecompressError(f"invalid snappy data: a chunk of {size} bytes (at most 65536)")
        total += size
        pos += 4 + length
    return total


class _Snappy(Compression):
    """snappy in its framing format (as gRPC and the Connect conformance suite use it),
    through cramjam. Every chunk declares its size up front, so the limit is checked on the
    declared sizes before any decompression."""

    name = "snappy"

    def __init__(self) -> None:
        import cramjam

        self._snappy = cramjam.snappy
        self._error = cramjam.DecompressionError

    def compress(self, data: bytes) -> bytes:
        return bytes(self._snappy.compress(data))

    def decompress(self, data: bytes, limit: int | None) -> bytes:
        declared = _snappy_framed_length(data)  # also tells truncation from corruption
        if limit is not None and declared > limit:
            raise _too_large(limit)
        try:
            out = bytes(self._snappy.decompress(data))
        except self._error as exc:
            raise DecompressError(f"invalid snappy data: {exc}") from exc
        if limit is not None and len(out) > limit:  # declared sizes are checked by snappy
            raise _too_large(limit)
        return out


def _load() -> dict[str, Compression]:
    registry: dict[str, Compression] = {"gzip": _Gzip()}
    for factory in (_Brotli, _Zstd, _Deflate, _Snappy):
        try:
            c = factory()
        except ImportError:
            continue
        registry[c.name] = c
    return registry


_REGISTRY = _load()


def get(name: str) -> Compression | None:
    """The compression named ``name``, or ``None`` if unsupported (identity included)."""
    return _REGISTRY.get(name)


def available() -> tuple[str, ...]:
    """Names of the installed compressions, preferred first (excluding identity)."""
    return tuple(_REGISTRY)


def decompress_message(
    comp: Compression | None, data: bytes, limit: int | None, corrupt: Code
) -> bytes:
    """One message as received (``comp`` is ``None`` when it is not compressed), checked
    against ``limit`` after decompression; corrupt data is a ``ConnectError`` with ``corrupt``,
    the code the caller's side of the protocol uses for it."""
    if comp is None:
        if limit is not None and len(data) > limit:
            raise ConnectError(
                Code.RESOURCE_EXHAUSTED,
                f"message size {len(data)} is larger than the configured limit of {limit} bytes",
            )
        return data
    if not data:
        # An empty message needs no decompressing, and some encoders (Go's zstd) write
        # nothing at all for it.
        return data
    error: ConnectError
    try:
        return comp.decompress(data, limit)
    except DecompressError as exc:
        error = ConnectError(corrupt, f"failed to decompress message: {exc}")
    except ConnectError as exc:
        error = detached(exc)
    # Raised here, outside the handlers, with no traceback or context from the decompressor:
    # callers keep errors until they answer, and the decompressor's frames may hold up to
    # ``limit`` bytes of partial output.
    raise error


def buffered_limit(limit: int | None, compressed: bool) -> int | None:
    """How many bytes of one message to buffer before decompressing it.

    Compressed data is checked against ``limit`` again once decompressed; this bound only
    keeps memory in check (real compressed data is never twice the size of its content).
    """
    if limit is None or not compressed:
        return limit
    return 2 * limit + 65536


def _resolve(name: str | None, allowed: tuple[str, ...]) -> Compression | None:
    """The compression ``name`` in a header: ``None`` for none (or identity), else the
    compression if it is in ``allowed``; raises ``KeyError`` otherwise."""
    if name is None or name == "" or name == IDENTITY:
        return None
    comp = _REGISTRY.get(name) if name in allowed else None
    if comp is None:
        raise KeyError(name)
    return comp


def for_request(name: str | None, enabled: tuple[str, ...]) -> Compression | None:
    """Server side: the compression a request names, among those the server ``enabled``;
    ``unimplemented`` (as the Connect and gRPC specs say) naming the supported ones."""
    try:
        return _resolve(name, enabled)
    except KeyError:
        raise ConnectError(
            Code.UNIMPLEMENTED,
            f"unknown compression {name!r}: supported encodings are "
            f"{', '.join((IDENTITY, *enabled))}",
        ) from None


def for_response(name: str | None, header: str) -> Compression | None:
    """Client side: the compression a response names in ``header``; a peer using one we
    cannot decompress broke the protocol (``internal``)."""
    try:
        return _resolve(name, available())
    except KeyError:
        supported = ", ".join((IDENTITY, *available()))
        raise ConnectError(
            Code.INTERNAL,
            f"protocol error: peer used unsupported {header} {name!r} (supported: {supported})",
        ) from None
