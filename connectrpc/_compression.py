"""Message compression: identity, gzip, and optionally br (brotli) and zstd.

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

from ._code import Code
from ._error import ConnectError, detached

__all__ = [
    "IDENTITY",
    "Compression",
    "DecompressError",
    "available",
    "buffered_limit",
    "decompress_message",
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


class _Gzip(Compression):
    name = "gzip"

    def compress(self, data: bytes) -> bytes:
        return gzip.compress(data, compresslevel=6, mtime=0)

    def decompress(self, data: bytes, limit: int | None) -> bytes:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = d.decompress(data, 0 if limit is None else limit + 1)
        except zlib.error as exc:
            raise DecompressError(f"invalid gzip data: {exc}") from exc
        if limit is not None and len(out) > limit:
            raise _too_large(limit)
        if not d.eof:
            raise DecompressError("truncated gzip data")
        return out


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

    def __init__(self) -> None:
        import zstandard

        self._zstd = zstandard
        self._compressor = zstandard.ZstdCompressor(level=3)
        self._decompressor = zstandard.ZstdDecompressor()

    def compress(self, data: bytes) -> bytes:
        return self._compressor.compress(data)

    def decompress(self, data: bytes, limit: int | None) -> bytes:
        zstd = self._zstd
        d = self._decompressor
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


def _load() -> dict[str, Compression]:
    registry: dict[str, Compression] = {"gzip": _Gzip()}
    for factory in (_Brotli, _Zstd):
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
