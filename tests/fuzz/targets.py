"""Fuzz targets: every parser that reads bytes or headers from the network.

A target is a function ``(data: bytes) -> None`` registered with ``@target``. It turns the
fuzzer's bytes into a call of the parser under test (see ``_input.FuzzInput`` for how
parameters and payload are taken from the bytes) and checks the invariant all parsers share:

    any input yields messages (or a clean end) or a ``ConnectError``: never another
    exception, a hang, or memory out of proportion to the configured limits.

A target returns normally when the invariant holds (including when the parser rejected the
input with a ``ConnectError``, or with the documented exception of a lower-level API such as
``DecompressError``). Any other exception escaping a target is a finding: either the parser
raised it, or a check here raised ``InvariantViolationError``.

Adding a target (for instance a gRPC / gRPC-Web trailer parser) is one more decorated
function here plus a seed directory ``tests/fuzz/corpus/<name>/``; the smoke test and
``tools/fuzz.sh`` pick it up from ``TARGETS``.

Known bugs being fixed in the runtime have an id (``KNOWN_BUGS``). By default their
violations fail like any other; campaigns may set ``CONNECTRPC_FUZZ_MASK_KNOWN=1`` so that
a known bug is counted instead of stopping the fuzzer, which can then look for new ones.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import inspect
import math
import os
import re
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf import empty_pb2
from multidict import CIMultiDict

from connectrpc._core import compression as _compression
from connectrpc._core.code import Code
from connectrpc._core.codec import CODECS
from connectrpc._core.envelope import HEADER_SIZE, EnvelopeReader, encode_envelope
from connectrpc._protocol.connect import (
    ConnectClientProtocol,
    ConnectStreamDecoder,
    HTTPError,
    RequestPlan,
    decode_error_json,
    http_error_response,
    negotiate_compression,
    parse_timeout,
    plan_request,
    split_unary_trailers,
    validate_stream_response,
    validate_unary_response,
)
from connectrpc._protocol.grpc import (
    GrpcWebResponseDecoder,
    decode_grpc_message,
    decode_status_details,
    decode_trailers_frame,
)
from connectrpc._protocol.grpc import parse_timeout as parse_grpc_timeout
from connectrpc._transports import http1 as _transport_http1
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType

from ._input import FuzzInput, split_chunks

__all__ = ["KNOWN_BUGS", "TARGETS", "InvariantViolationError", "Target"]


class InvariantViolationError(AssertionError):
    """A parser returned or kept something it must not (too large, inconsistent, ...)."""


@dataclass(frozen=True)
class Target:
    """One fuzz target: its name (also its corpus directory) and function."""

    name: str
    fn: Callable[[bytes], None]
    doc: str
    max_len: int = 4096
    """The longest input the coverage-guided campaign should generate (libFuzzer -max_len)."""


TARGETS: dict[str, Target] = {}


def target(*, max_len: int = 4096) -> Callable[[Callable[[bytes], None]], Callable[[bytes], None]]:
    """Register a target under its function name without the ``fuzz_`` prefix."""

    def register(fn: Callable[[bytes], None]) -> Callable[[bytes], None]:
        name = fn.__name__.removeprefix("fuzz_")
        TARGETS[name] = Target(name, fn, (fn.__doc__ or "").strip(), max_len)
        return fn

    return register


# --- known bugs -------------------------------------------------------------------------

KNOWN_BUGS: dict[str, str] = {
    "zstd-alloc": "zstd decompression allocates far past the limit per 16 KiB input step",
    "http1-header-bound": "HTTP1Transport keeps response headers without a count/size bound",
    "http1-1xx": "HTTP1Transport takes a 1xx (e.g. 103 Early Hints) response head as final",
    "timeout-unicode-digit": "parse_timeout takes non-ASCII digits (ValueError for '²')",
    "http1-status-range": "HTTP1Transport takes a status line like '051' (status 51) as final",
}

MASK_KNOWN = os.environ.get("CONNECTRPC_FUZZ_MASK_KNOWN", "") not in ("", "0")
known_hits: dict[str, int] = dict.fromkeys(KNOWN_BUGS, 0)


def violation(message: str, *, known: str | None = None) -> None:
    """Report a broken invariant; a masked known bug is only counted."""
    if known is not None:
        assert known in KNOWN_BUGS, known
        if MASK_KNOWN:
            known_hits[known] += 1
            n = known_hits[known]
            if str(n).rstrip("0") == "1":  # 1, 10, 100, ...
                print(f"fuzz: known bug {known} hit {n} times (masked): {message}", file=sys.stderr)
            return
        message = f"[known bug {known}] {message}"
    raise InvariantViolationError(message)


def check(condition: bool, message: str, *, known: str | None = None) -> None:
    if not condition:
        violation(message, known=known)


def _check_error(err: object, where: str) -> None:
    """A ConnectError as the parsers produce them: a Code, a str message, byte details."""
    check(isinstance(err, ConnectError), f"{where}: {err!r} is not a ConnectError")
    assert isinstance(err, ConnectError)
    check(isinstance(err.code, Code), f"{where}: code {err.code!r}")
    check(isinstance(err.message, str), f"{where}: message {err.message!r}")
    for d in err.details:
        check(isinstance(d.type_name, str) and isinstance(d.value, bytes), f"{where}: {d!r}")
    for k, v in err.metadata.items():
        check(isinstance(k, str) and isinstance(v, str), f"{where}: metadata {k!r}: {v!r}")
    str(err)  # must not raise


# --- memory ---------------------------------------------------------------------------


@contextlib.contextmanager
def peak_memory_at_most(bound: int, what: str, *, known: str | None = None) -> Iterator[None]:
    """Check that the Python heap (tracemalloc) grows by at most ``bound`` bytes inside.

    tracemalloc sees the buffers that zlib, brotli and zstandard return as ``bytes``; starting
    it costs a little, so the targets that need it start it per call unless a campaign
    runner already keeps it running.
    """
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        yield
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        if started:
            tracemalloc.stop()
    check(peak <= bound, f"{what}: peak allocation {peak} bytes > bound {bound}", known=known)


# --- envelopes ----------------------------------------------------------------------------

_LIMITS: tuple[int | None, ...] = (None, 0, 1, 5, 16, 100, 1000, 4096, 65536)


def _reference_frames(
    payload: bytes, max_size: int | None
) -> tuple[list[tuple[int, bytes]], int | None, int]:
    """Frames of a whole stream, the offset at which an oversize prefix is complete (if
    any), and the number of trailing bytes of an incomplete frame."""
    frames: list[tuple[int, bytes]] = []
    pos = 0
    while len(payload) - pos >= HEADER_SIZE:
        flags = payload[pos]
        length = int.from_bytes(payload[pos + 1 : pos + 5], "big")
        if max_size is not None and length > max_size:
            return frames, pos + HEADER_SIZE, 0
        end = pos + HEADER_SIZE + length
        if end > len(payload):
            break
        frames.append((flags, payload[pos + HEADER_SIZE : end]))
        pos = end
    return frames, None, len(payload) - pos


@target()
def fuzz_envelope(data: bytes) -> None:
    """``EnvelopeReader`` fed a stream split at fuzzer-chosen points.

    Input: ``limit`` (1 byte, an index into a table of max sizes), ``split`` (1 byte, see
    ``split_chunks``), then the stream. Checks, against a whole-stream reference parser:
    the frames are exactly the reference's; an oversize declared length raises
    ``resource_exhausted`` in the very ``feed`` that completes its 5-byte prefix; at most
    one incomplete frame (no more than ``max_size + 5`` bytes) is buffered; and
    ``incomplete_error`` reports exactly the incomplete tail.
    """
    inp = FuzzInput(data)
    max_size = inp.choice(_LIMITS)
    seed = inp.byte()
    payload = inp.rest()
    want, oversize_at, tail = _reference_frames(payload, max_size)
    reader = EnvelopeReader(max_size)
    got: list[tuple[int, bytes]] = []
    fed = 0
    for chunk in split_chunks(payload, seed):
        fed += len(chunk)
        try:
            got += reader.feed(chunk)
        except ConnectError as exc:
            check(exc.code is Code.RESOURCE_EXHAUSTED, f"unexpected error {exc!r}")
            check(oversize_at is not None, f"error without an oversize frame: {exc!r}")
            assert oversize_at is not None
            check(fed >= oversize_at and fed - len(chunk) < oversize_at, "error at wrong feed")
            check(got == want[: len(got)], "frames before the error differ")
            return
        check(
            oversize_at is None or fed < oversize_at,
            f"no error once the oversize prefix ending at {oversize_at} arrived (fed {fed})",
        )
        if max_size is not None:
            check(reader.buffered < max_size + HEADER_SIZE, f"buffered {reader.buffered}")
    check(got == want, f"frames differ: {len(got)} vs {len(want)} frames")
    check(reader.buffered == tail, f"buffered {reader.buffered}, expected {tail}")
    err = reader.incomplete_error()
    check((err is None) == (tail == 0), f"incomplete_error {err!r} with {tail} bytes left")
    if err is not None:
        _check_error(err, "incomplete_error")
        check(err.code is Code.INTERNAL, f"incomplete_error code {err.code}")


# --- Connect client: streams, end-of-stream and error JSON ----------------------------------

_ENCODINGS: tuple[str | None, ...] = (None, "", "identity", "gzip", "br", "zstd", "bogus", "GZIP")


def _drive_decoder(decoder: Any, chunks: list[bytes], limit: int | None) -> None:
    """Feed a response decoder, check each message against the limit, then finish it."""
    try:
        for chunk in chunks:
            for message in decoder.feed(chunk):
                check(isinstance(message, bytes), f"message {type(message)}")
                check(limit is None or len(message) <= limit, f"message {len(message)} > {limit}")
        for message in decoder.finish():
            check(isinstance(message, bytes), f"message {type(message)}")
            check(limit is None or len(message) <= limit, f"message {len(message)} > {limit}")
    except ConnectError as exc:
        _check_error(exc, "decoder")
        return
    if decoder.error is not None:
        _check_error(decoder.error, "end-of-stream error")
    check(isinstance(decoder.trailers, CIMultiDict), "trailers")
    for k, v in decoder.trailers.items():
        check(isinstance(k, str) and isinstance(v, str), f"trailer {k!r}: {v!r}")


@target()
def fuzz_connect_stream(data: bytes) -> None:
    """``ConnectStreamDecoder`` (a Connect streaming response body) on arbitrary bodies.

    Input: ``connect-content-encoding`` (1 byte, from a table including unsupported
    names), ``limit`` (1 byte), ``mode`` (1 byte), ``split`` (1 byte), payload. Mode 0 feeds
    the payload as the raw body; mode 1 wraps it as an end-of-stream envelope (so the fuzzer
    works on the end-of-stream JSON directly); mode 2 the same, compressed with the
    response's encoding. Each message must fit the limit, and the stream must end in
    messages plus a status (``error`` / ``trailers``) or a ``ConnectError``.
    """
    inp = FuzzInput(data)
    encoding = inp.choice(_ENCODINGS)
    limit = inp.choice(_LIMITS)
    mode = inp.byte() % 3
    seed = inp.byte()
    payload = inp.rest()
    headers: CIMultiDict[str] = CIMultiDict()
    if encoding is not None:
        headers["connect-content-encoding"] = encoding
    if mode == 1:
        payload = encode_envelope(2, payload)
    elif mode == 2:
        comp = _compression.get(encoding or "")
        payload = (
            encode_envelope(3, comp.compress(payload)) if comp else encode_envelope(2, payload)
        )
    try:
        decoder = ConnectStreamDecoder(headers, limit)
    except ConnectError as exc:
        _check_error(exc, "unsupported encoding")
        return
    _drive_decoder(decoder, split_chunks(payload, seed), limit)


_STATUSES = (200, 200, 200, 400, 401, 404, 408, 429, 500, 502, 503, 504, 0, 99, 101, 103, 599)


@target()
def fuzz_connect_error_json(data: bytes) -> None:
    """``decode_error_json``: a unary error body (any bytes) with any HTTP status.

    Input: ``status`` (2 bytes), then the body. It must always return a ``ConnectError``
    (falling back to the code the status implies) and never raise.
    """
    inp = FuzzInput(data)
    status = inp.uint(2)
    body = inp.rest()
    err = decode_error_json(body, status)
    _check_error(err, "decode_error_json")
    check(err.wire, "decoded error not marked as from the wire")


def _decode_header_text(raw: bytes, utf8: bool) -> str:
    # httptools-based transports decode headers as latin-1; aiohttp as UTF-8 with escapes.
    return raw.decode("utf-8", "surrogateescape") if utf8 else raw.decode("latin-1")


def _read_headers(inp: FuzzInput, utf8: bool) -> list[tuple[str, str]]:
    """``name: value`` lines up to an empty line (or the end of the input)."""
    headers: list[tuple[str, str]] = []
    while (line := inp.line()) is not None and line.rstrip(b"\r"):
        name, _, value = line.rstrip(b"\r").partition(b":")
        headers.append((_decode_header_text(name, utf8), _decode_header_text(value.strip(), utf8)))
    return headers


@target()
def fuzz_connect_client_response(data: bytes) -> None:
    """``ConnectClientProtocol.start_response`` / ``decode_error_body`` and the decoder they
    choose, for any status, headers and body.

    Input: ``status`` (1 byte, from a table), ``stream`` (1 byte), ``codec`` (1 byte),
    ``limit`` (1 byte), ``split`` (1 byte), ``utf8`` (1 byte: header decoding), then header
    lines ``name: value`` up to an empty line, then the body. The head yields an error, an
    error body (decoded to a ``ConnectError`` whatever the body), or a decoder whose output
    obeys the limit.
    """
    inp = FuzzInput(data)
    status = inp.choice(_STATUSES)
    stream = inp.flag()
    codec = inp.choice(list(CODECS.values()))
    limit = inp.choice(_LIMITS)
    seed = inp.byte()
    utf8 = inp.flag()
    headers = CIMultiDict(_read_headers(inp, utf8))
    body = inp.rest()
    protocol = ConnectClientProtocol(codec, ("gzip", "br", "zstd"), "fuzz", limit)
    try:
        start = protocol.start_response(status, headers, stream=stream)
    except ConnectError as exc:
        _check_error(exc, "start_response")
        return
    if start.error is not None:
        _check_error(start.error, "start_response error")
        return
    if start.error_body:
        try:
            err = protocol.decode_error_body(status, headers, body, limit)
        except ConnectError as exc:  # e.g. an unsupported content-encoding
            err = exc
        _check_error(err, "decode_error_body")
        return
    check(start.decoder is not None, "start_response chose nothing")
    _drive_decoder(start.decoder, split_chunks(body, seed), limit)


# --- headers: connect-timeout-ms, content types, encodings -----------------------------------

_TIMEOUT_RE = re.compile(r"[0-9]{1,10}")


@target()
def fuzz_connect_headers(data: bytes) -> None:
    """``parse_timeout`` and the other readers of Connect request/response headers.

    Input: ``utf8`` (1 byte), ``status`` (1 byte), ``enabled`` (1 byte: a subset of the
    compressions), then lines: ``connect-timeout-ms`` value, ``accept-encoding`` value,
    ``content-type`` value, then header lines. ``parse_timeout`` must accept exactly 1 to 10
    ASCII digits (returning their value in seconds) and reject everything else with
    ``invalid_argument``; negotiation must return an enabled compression or none; the
    response validators must return their documented types.
    """
    inp = FuzzInput(data)
    utf8 = inp.flag()
    status = inp.choice(_STATUSES)
    enabled_bits = inp.byte()
    enabled = tuple(n for i, n in enumerate(_compression.available()) if enabled_bits >> i & 1)
    timeout = _decode_header_text(inp.line() or b"", utf8)
    accept = _decode_header_text(inp.line() or b"", utf8)
    content_type = _decode_header_text(inp.line() or b"", utf8)
    headers: CIMultiDict[str] = CIMultiDict(_read_headers(inp, utf8))
    headers["content-type"] = content_type

    _check_timeout(timeout)
    comp = negotiate_compression(accept, None, enabled)
    check(comp is None or comp.name in enabled, f"negotiated {comp!r} not in {enabled}")
    plain, trailers = split_unary_trailers(headers)
    check(len(plain) + len(trailers) == len(headers), "split_unary_trailers lost headers")
    for codec in CODECS:
        verdict = validate_unary_response(codec, status, headers)
        check(verdict is None or verdict is True or isinstance(verdict, ConnectError), "unary")
        if isinstance(verdict, ConnectError):
            _check_error(verdict, "validate_unary_response")
        err = validate_stream_response(codec, status, headers)
        if err is not None:
            _check_error(err, "validate_stream_response")


def _check_timeout(value: str) -> None:
    valid = _TIMEOUT_RE.fullmatch(value) is not None
    try:
        seconds = parse_timeout(value)
    except ConnectError as exc:
        check(not valid, f"parse_timeout rejected valid {value!r}")
        check(exc.code is Code.INVALID_ARGUMENT, f"parse_timeout code {exc.code}")
        return
    except ValueError as exc:
        non_ascii_digit = any(c.isdigit() and not c.isascii() for c in value)
        violation(
            f"parse_timeout({value!r}) raised {exc!r}",
            known="timeout-unicode-digit" if non_ascii_digit else None,
        )
        return
    if not valid:
        violation(
            f"parse_timeout accepted {value!r} as {seconds}",
            known="timeout-unicode-digit" if not value.isascii() else None,
        )
        return
    check(seconds == int(value) / 1000, f"parse_timeout({value!r}) = {seconds}")


# --- server: request planning --------------------------------------------------------------

_METHODS = [
    MethodInfo("fuzz.v1.S", f"M{i}", empty_pb2.Empty, empty_pb2.Empty, st, idem)
    for i, (st, idem) in enumerate((st, idem) for st in StreamType for idem in IdempotencyLevel)
]
_HTTP_METHODS = ("POST", "GET", "PUT", "HEAD", "OPTIONS", "post", "get", "")


@target()
def fuzz_server_plan_request(data: bytes) -> None:
    """``plan_request``: the server's reading of a request head and GET query string.

    Input: ``method`` (1 byte: stream type x idempotency), ``http method`` (1 byte, from a
    table), ``enabled`` (1 byte: compressions), then header lines (names lower-cased, the
    last of a repeated name wins, as the ASGI server builds them; latin-1), an empty line,
    and the query string. The result is a ``RequestPlan`` whose timeout is a finite
    non-negative number, or an ``HTTPError`` that ``http_error_response`` can send; nothing
    else (a ``ConnectError`` or ``ValueError`` here would escape the server as a 500).
    """
    inp = FuzzInput(data)
    method = inp.choice(_METHODS)
    http_method = inp.choice(_HTTP_METHODS)
    enabled_bits = inp.byte()
    enabled = tuple(n for i, n in enumerate(_compression.available()) if enabled_bits >> i & 1)
    headers = {k.lower(): v for k, v in _read_headers(inp, utf8=False)}
    query = inp.rest()
    timeout_header = headers.get("connect-timeout-ms")
    try:
        plan = plan_request(method, http_method, headers, query, enabled)
    except HTTPError as exc:
        check(400 <= exc.status <= 599, f"HTTPError status {exc.status}")
        if exc.error is not None:
            _check_error(exc.error, "HTTPError.error")
        status, _, body = http_error_response(exc)
        check(isinstance(body, bytes) and status == exc.status, "http_error_response")
        return
    except ValueError as exc:
        t = timeout_header or ""
        known = any(c.isdigit() and not c.isascii() for c in t)
        violation(
            f"plan_request raised {exc!r} (connect-timeout-ms {t!r})",
            known="timeout-unicode-digit" if known else None,
        )
        return
    check(isinstance(plan, RequestPlan), f"plan_request returned {plan!r}")
    if plan.timeout is not None:
        check(math.isfinite(plan.timeout) and plan.timeout >= 0, f"timeout {plan.timeout}")
        if timeout_header is not None and _TIMEOUT_RE.fullmatch(timeout_header) is None:
            violation(
                f"accepted connect-timeout-ms {timeout_header!r}",
                known="timeout-unicode-digit" if not timeout_header.isascii() else None,
            )
    for comp in (plan.request_compression, plan.response_compression):
        check(comp is None or comp.name in enabled, f"compression {comp!r} not enabled")
    check(plan.stream == (method.stream_type is not StreamType.UNARY), "stream")
    if http_method == "GET":
        check(isinstance(plan.get_message, bytes), "GET plan without a message")


# --- decompression ----------------------------------------------------------------------

_DECOMPRESS_LIMITS = (0, 1, 100, 1000, 4096, 65536, 1 << 20)


def _decompress_target(name: str) -> None:
    def fuzz(data: bytes) -> None:
        inp = FuzzInput(data)
        limit = inp.choice(_DECOMPRESS_LIMITS)
        via_message = inp.flag()
        payload = inp.rest()
        comp = _compression.get(name)
        assert comp is not None, f"{name} is not installed"
        # Output up to the limit, the input and one step's working buffers; anything far
        # beyond means a bomb is being inflated before the limit is checked.
        bound = 2 * limit + 4 * len(payload) + (1 << 20)
        out: bytes | None = None
        with peak_memory_at_most(
            bound,
            f"{name}.decompress(limit={limit})",
            known="zstd-alloc" if name == "zstd" else None,
        ):
            try:
                if via_message:
                    out = _compression.decompress_message(comp, payload, limit, Code.INTERNAL)
                else:
                    out = comp.decompress(payload, limit)
            except _compression.DecompressError as exc:
                check(not via_message, f"decompress_message let through {exc!r}")
                check(isinstance(str(exc), str), "DecompressError")
            except ConnectError as exc:
                _check_error(exc, "decompress")
                ok = (
                    (Code.RESOURCE_EXHAUSTED, Code.INTERNAL)
                    if via_message
                    else (Code.RESOURCE_EXHAUSTED,)
                )
                check(exc.code in ok, f"decompress error code {exc.code}")
        if out is not None:
            check(isinstance(out, bytes), f"decompress returned {type(out)}")
            check(len(out) <= limit, f"decompressed {len(out)} bytes > limit {limit}")

    fuzz.__name__ = f"fuzz_decompress_{name}"
    fuzz.__doc__ = f"""``{name}`` decompression with a limit: ``get({name!r}).decompress`` and
    ``decompress_message``.

    Input: ``limit`` (1 byte, from a table of limits), ``api`` (1 byte: the raw
    ``decompress``, which may raise ``DecompressError``, or ``decompress_message``, which
    must turn that into a ``ConnectError``), then the compressed data. The output never
    exceeds the limit (``resource_exhausted`` instead), and the Python heap never grows by
    more than about twice the limit plus a few times the input: a decompression bomb must
    be stopped before it is inflated.
    """
    target()(fuzz)


for _name in ("gzip", "br", "zstd", "deflate", "snappy"):
    _decompress_target(_name)


# --- gRPC and gRPC-Web ------------------------------------------------------------------------

_GRPC_ENCODINGS: tuple[str | None, ...] = (None, "identity", "gzip", "snappy", "bogus")


@target()
def fuzz_grpc_web_response(data: bytes) -> None:
    """``GrpcWebResponseDecoder`` (a gRPC-Web response body, or a gRPC one whose status is in
    HTTP trailers) on arbitrary bodies, trailers frames and header-borne statuses.

    Input: ``grpc-encoding`` (1 byte, from a table), ``limit`` (1 byte), ``mode`` (1 byte),
    ``split`` (1 byte), then the payload. Mode 0 feeds the payload as the raw gRPC-Web body;
    mode 1 wraps it as a trailers frame (``0x80``), so the fuzzer works on the HTTP/1-style
    trailer lines directly; mode 2 puts the payload's lines in the response *headers* (a
    trailers-only response) with an empty body; mode 3 decodes gRPC proper, with the
    payload's lines as HTTP trailers. Every message fits the limit, and the stream ends in
    messages plus a status, or a ``ConnectError``.
    """
    inp = FuzzInput(data)
    encoding = inp.choice(_GRPC_ENCODINGS)
    limit = inp.choice(_LIMITS)
    mode = inp.byte() % 4
    seed = inp.byte()
    payload = inp.rest()
    headers: CIMultiDict[str] = CIMultiDict()
    if encoding is not None:
        headers["grpc-encoding"] = encoding
    http_trailers: CIMultiDict[str] | None = None
    body = payload
    if mode == 1:
        body = encode_envelope(0x80, payload)
    elif mode in (2, 3):
        fields = CIMultiDict(_read_headers(FuzzInput(payload), utf8=False))
        body = b""
        if mode == 2:
            headers.extend(fields)
        else:
            http_trailers = fields
    try:
        decoder = GrpcWebResponseDecoder(headers, limit, mode != 3, CIMultiDict(headers))
    except ConnectError as exc:
        _check_error(exc, "unsupported encoding")
        return
    try:
        for chunk in split_chunks(body, seed):
            for message in decoder.feed(chunk):
                check(limit is None or len(message) <= limit, f"message {len(message)} > {limit}")
        decoder.finish(http_trailers)
    except ConnectError as exc:
        _check_error(exc, "gRPC decoder")
        return
    if decoder.error is not None:
        _check_error(decoder.error, "gRPC status")
    for k, v in decoder.trailers.items():
        check(isinstance(k, str) and isinstance(v, str), f"trailer {k!r}: {v!r}")
        check(k.lower() not in ("grpc-status", "grpc-message"), f"status field {k} visible")


@target()
def fuzz_grpc_headers(data: bytes) -> None:
    """The gRPC header parsers: ``grpc-timeout``, ``grpc-message`` percent-decoding,
    ``grpc-status-details-bin`` and a gRPC-Web trailers frame.

    Input: ``which`` (1 byte), then the value. A timeout is either a non-negative number
    of seconds or ``invalid_argument``; a status message always decodes to text; a details
    value is either a list of details or ``ValueError``; a trailers frame is either fields
    or ``ValueError``. Nothing else may escape.
    """
    inp = FuzzInput(data)
    which = inp.byte() % 4
    raw = inp.rest()
    text = raw.decode("latin-1")
    if which == 0:
        try:
            seconds = parse_grpc_timeout(text)
        except ConnectError as exc:
            check(exc.code is Code.INVALID_ARGUMENT, f"grpc-timeout error code {exc.code}")
            return
        check(seconds >= 0, f"negative timeout {seconds}")
        check(len(text) <= 9 and text.isascii(), f"accepted grpc-timeout {text!r}")
    elif which == 1:
        check(isinstance(decode_grpc_message(text), str), "grpc-message")
    elif which == 2:
        try:
            details = decode_status_details(text)
        except ValueError:
            return
        check(all(isinstance(d.value, bytes) for d in details), "details")
    else:
        try:
            fields = decode_trailers_frame(raw)
        except ValueError:
            return
        check(all(isinstance(k, str) and k == k.lower() for k, _ in fields), "field names")


# --- HTTP1Transport's response parser -----------------------------------------------------

MAX_HEADER_BYTES = 256 << 10
"""Response head bytes a client may keep if the transport has no setting for it (generous:
Node and h11 allow 16 KiB); with ``max_header_bytes`` / ``max_headers`` settings the target
checks their defaults instead."""
MAX_HEADER_COUNT = 10_000
MAX_AMPLIFIED = 2 << 20
"""Bytes the HTTP target may generate from one input by repeating a slice of it."""
MAX_FEEDS = 100_000


class FakeTransport(asyncio.Transport):
    """What ``_Connection`` sees of a socket: records pause/resume/abort, writes nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_reading(self) -> bool:
        return not self.paused

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted


class ObservedConnection(_transport_http1._Connection):
    """``_Connection`` noting the status each time it takes a response head as final.

    Between two ``data_received`` calls httptools may parse several heads (a ``103`` then the
    ``200``); this records them all. Nothing is raised inside the callback, because httptools
    would turn that into a parse error.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, **limits: int) -> None:
        self.final_statuses: list[int] = []
        # Running totals over ``headers`` (recounted when ``prepare`` starts a new list).
        self.counted_list: list[tuple[str, str]] | None = None
        self.counted = 0
        self.counted_bytes = 0
        super().__init__(loop, **limits)

    def head_size(self) -> tuple[int, int]:
        """Number and total size of the response headers kept, counted incrementally."""
        headers = self.headers
        if headers is not self.counted_list or len(headers) < self.counted:
            self.counted_list, self.counted, self.counted_bytes = headers, 0, 0
        for k, v in headers[self.counted :]:
            self.counted_bytes += len(k) + len(v)
        self.counted = len(headers)
        return self.counted, self.counted_bytes

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.head_done:
            self.final_statuses.append(self.status)


def _connection_limits() -> dict[str, int]:
    """The head limits ``_Connection`` takes, at ``HTTP1Transport``'s defaults (if any)."""
    takes = inspect.signature(_transport_http1._Connection.__init__).parameters
    defaults = inspect.signature(_transport_http1.HTTP1Transport.__init__).parameters
    return {
        name: defaults[name].default
        for name in ("max_header_bytes", "max_headers")
        if name in takes and name in defaults
    }


_LIMITS_HTTP1 = _connection_limits()
_loop: asyncio.AbstractEventLoop | None = None


def _event_loop() -> asyncio.AbstractEventLoop:
    """One loop for the process (``_Connection`` only keeps it to create futures)."""
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
        atexit.register(_loop.close)
    return _loop


def _check_connection(conn: ObservedConnection, last_chunk: int) -> None:
    statuses, conn.final_statuses = conn.final_statuses, []
    for status in statuses:
        # 101 Switching Protocols does end the exchange (the caller then fails on the status).
        check(
            not 100 <= status <= 199 or status == 101,
            f"interim response {status} taken as the final response head",
            known="http1-1xx",
        )
    err = conn._error
    check(err is None or isinstance(err, ConnectError), f"connection error {err!r}")
    if err is not None:
        return
    count, size = conn.head_size()
    max_count = _LIMITS_HTTP1.get("max_headers", MAX_HEADER_COUNT)
    max_size = _LIMITS_HTTP1.get("max_header_bytes", MAX_HEADER_BYTES)
    check(
        count <= max_count and size <= max_size,
        f"response head kept: {count} headers, {size} bytes",
        known="http1-header-bound",
    )
    if conn.head_done:
        # httptools reads any three digits; RFC 9110 section 15 allows 100-599, and aiohttp
        # rejects anything outside 100-999.
        check(
            100 <= conn.status <= 999,
            f"final response status {conn.status}",
            known="http1-status-range",
        )
    check(
        conn.buffered <= _transport_http1._HIGH_WATER + last_chunk,
        f"{conn.buffered} body bytes buffered past the high-water mark",
    )
    check(conn.buffered == sum(len(c) for c in conn.chunks.chunks()), "buffered count is off")


@target(max_len=8192)
def fuzz_http1_response(data: bytes) -> None:
    """``HTTP1Transport``'s response parser (``_Connection``, an asyncio protocol over
    httptools) fed a response in fuzzer-chosen chunks, then the connection closing.

    Input: ``close`` (1 byte: clean EOF or a reset), ``reader`` (1 byte: whether the
    simulated caller drains the body when reading is paused, and whether a completed
    response's connection is reused for what follows), ``split`` (1 byte), ``repeat``
    (1 byte), ``prefix length`` and ``slice length`` (2 bytes each), then the bytes. The
    slice after the prefix is sent ``64 * repeat`` times (at most 2 MiB in all), so huge
    header blocks or bodies are reachable from small inputs.

    Checks after every ``data_received``: it never raises; the connection's error, if any,
    is a ``ConnectError``; the head kept is bounded (``MAX_HEADER_COUNT`` /
    ``MAX_HEADER_BYTES``); a 1xx head is never taken as the final response; body bytes
    buffered stay under the 1 MiB high-water mark plus one read (the fake transport honours
    ``pause_reading``). After ``connection_lost`` the exchange is complete or failed with
    a ``ConnectError``.
    """
    inp = FuzzInput(data)
    reset = inp.flag()
    reader = inp.byte()
    drain = bool(reader & 1)
    reuse = bool(reader & 2)
    seed = inp.byte()
    repeat = inp.byte()
    head_len = inp.uint(2)
    mid_len = inp.uint(2)
    payload = inp.rest()
    prefix, mid, suffix = (
        payload[:head_len],
        payload[head_len : head_len + mid_len],
        payload[head_len + mid_len :],
    )
    mid_chunks = [c for c in split_chunks(mid, seed) if c]
    reps = 0
    if mid and repeat:
        reps = min(64 * repeat, MAX_AMPLIFIED // len(mid), MAX_FEEDS // len(mid_chunks))

    def stream() -> Iterator[bytes]:
        yield from split_chunks(prefix, seed)
        for _ in range(reps):
            yield from mid_chunks
        yield from split_chunks(suffix, seed)

    conn = ObservedConnection(_event_loop(), **_LIMITS_HTTP1)
    transport = FakeTransport()
    conn.connection_made(transport)
    last = 0
    for chunk in stream():
        if transport.aborted:
            break
        if transport.paused:
            if not drain:
                break  # the caller stopped reading: nothing more arrives
            while transport.paused and conn.chunks:
                conn.take_chunk()
            check(not transport.paused, "reading still paused with nothing buffered")
        if conn.complete and reuse and conn.reusable():
            conn.prepare()
        last = len(chunk)
        conn.data_received(chunk)
        _check_connection(conn, last)
    conn.connection_lost(ConnectionResetError("reset") if reset else None)
    _check_connection(conn, last)
    check(conn.closed, "not closed after connection_lost")
    check(
        conn.complete or isinstance(conn._error, ConnectError),
        f"connection lost: complete={conn.complete} error={conn._error!r}",
    )
