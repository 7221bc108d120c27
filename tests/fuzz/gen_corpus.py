"""Write the seed corpus, ``tests/fuzz/corpus/<target>/``: ``python -m tests.fuzz.gen_corpus``.

The seeds are small valid and nearly-valid inputs in each target's input format (parameter
bytes first, see the target's docstring), so fuzzing starts from inputs that reach deep into
the parsers: well-formed frames and end-of-stream messages, error JSON with details, real
gzip / br / zstd data and a few decompression bombs, HTTP responses with content-length,
chunked and close-delimited bodies, 103 Early Hints, and huge header blocks built with the
HTTP target's repeat parameter. Files are named after their content's purpose; rerunning
the script rewrites them identically (the compressors are deterministic).
"""

from __future__ import annotations

import gzip
import json
import struct
import sys
from pathlib import Path

from connectrpc._core import compression as _compression
from connectrpc._core.envelope import encode_envelope

CORPUS = Path(__file__).resolve().parent / "corpus"

# Indices into the targets' parameter tables (see targets.py).
LIMIT_NONE, LIMIT_0, LIMIT_5, LIMIT_16, LIMIT_1000, LIMIT_64K = 0, 1, 3, 4, 6, 8
ENC_NONE, ENC_IDENTITY, ENC_GZIP, ENC_BR, ENC_ZSTD, ENC_BOGUS = 0, 2, 3, 4, 5, 6
DLIMIT_100, DLIMIT_1000, DLIMIT_64K = 2, 3, 5


def _comp(name: str) -> _compression.Compression:
    c = _compression.get(name)
    assert c is not None, name
    return c


def _end_stream(obj: object) -> bytes:
    return encode_envelope(2, json.dumps(obj).encode())


ERROR_OBJ = {
    "code": "invalid_argument",
    "message": "bad \u00e9",
    "details": [{"type": "google.protobuf.Empty", "value": "", "debug": {}}],
}
ERROR_WITH_DETAIL = {
    "code": "unavailable",
    "message": "try later",
    "details": [
        {"type": "type.googleapis.com/google.rpc.RetryInfo", "value": "CgIIAQ"},
        {"type": "x", "value": "AA=="},
    ],
}


def envelope() -> dict[str, bytes]:
    frames = encode_envelope(0, b"hello") + encode_envelope(1, b"") + encode_envelope(2, b"{}")
    return {
        "three_frames_whole": bytes([LIMIT_NONE, 0]) + frames,
        "three_frames_bytewise": bytes([LIMIT_1000, 1]) + frames,
        "three_frames_random": bytes([LIMIT_64K, 7]) + frames,
        "oversize_prefix": bytes([LIMIT_16, 3]) + encode_envelope(0, b"x" * 17),
        "truncated_body": bytes([LIMIT_NONE, 2]) + encode_envelope(0, b"abcdef")[:-2],
        "truncated_prefix": bytes([LIMIT_NONE, 0]) + b"\x00\x00\x00",
        "huge_declared": bytes([LIMIT_NONE, 0]) + b"\x00\xff\xff\xff\xff",
        "empty_frames": bytes([LIMIT_0, 1]) + encode_envelope(0, b"") * 4,
    }


def connect_stream() -> dict[str, bytes]:
    msgs = encode_envelope(0, b"\x08\x01") + encode_envelope(0, b"")
    ok = _end_stream({"metadata": {"x-trailer": ["a", "b"]}})
    gz = _comp("gzip")
    out = {
        "messages_then_ok": bytes([ENC_NONE, LIMIT_NONE, 0, 0]) + msgs + ok,
        "messages_then_error": bytes([ENC_NONE, LIMIT_1000, 0, 5])
        + msgs
        + _end_stream({"error": ERROR_WITH_DETAIL, "metadata": {"k": ["v"]}}),
        "empty_end_stream": bytes([ENC_IDENTITY, LIMIT_NONE, 0, 1]) + encode_envelope(2, b"{}"),
        "no_end_stream": bytes([ENC_NONE, LIMIT_NONE, 0, 0]) + msgs,
        "data_after_end": bytes([ENC_NONE, LIMIT_NONE, 0, 0]) + ok + msgs,
        "bad_flags": bytes([ENC_NONE, LIMIT_NONE, 0, 0]) + encode_envelope(0x44, b"x"),
        "compressed_without_encoding": bytes([ENC_NONE, LIMIT_NONE, 0, 0])
        + encode_envelope(1, gz.compress(b"x")),
        "gzip_messages": bytes([ENC_GZIP, LIMIT_1000, 0, 9])
        + encode_envelope(1, gz.compress(b"\x08\x01" * 10))
        + encode_envelope(3, gz.compress(json.dumps({"error": ERROR_OBJ}).encode())),
        "gzip_bomb_message": bytes([ENC_GZIP, LIMIT_1000, 0, 0])
        + encode_envelope(1, gz.compress(b"\0" * 100_000))
        + ok,
        "unsupported_encoding": bytes([ENC_BOGUS, LIMIT_NONE, 0, 0]) + ok,
        "eos_json_error": bytes([ENC_NONE, LIMIT_NONE, 1, 0])
        + json.dumps({"error": ERROR_OBJ}).encode(),
        "eos_json_metadata": bytes([ENC_NONE, LIMIT_NONE, 1, 3])
        + json.dumps({"metadata": {"a": ["1"], "b": []}}).encode(),
        "eos_json_bad_metadata": bytes([ENC_NONE, LIMIT_NONE, 1, 0]) + b'{"metadata":{"a":[1]}}',
        "eos_json_deep": bytes([ENC_NONE, LIMIT_NONE, 1, 0]) + b"[" * 2000,
        "eos_json_compressed": bytes([ENC_GZIP, LIMIT_NONE, 2, 0])
        + json.dumps({"error": {"code": "internal"}}).encode(),
    }
    for name in ("br", "zstd"):
        c = _comp(name)
        enc = ENC_BR if name == "br" else ENC_ZSTD
        out[f"{name}_messages"] = (
            bytes([enc, LIMIT_1000, 0, 4])
            + encode_envelope(1, c.compress(b"hello" * 20))
            + encode_envelope(3, c.compress(b"{}"))
        )
    return out


def connect_error_json() -> dict[str, bytes]:
    def st(status: int) -> bytes:
        return struct.pack(">H", status)

    return {
        "full": st(400) + json.dumps(ERROR_OBJ).encode(),
        "details": st(503) + json.dumps(ERROR_WITH_DETAIL).encode(),
        "no_code": st(404) + b'{"message":"nope"}',
        "unknown_code": st(500) + b'{"code":"teapot","message":"x"}',
        "bad_base64": st(400) + b'{"code":"internal","details":[{"type":"t","value":"!!"}]}',
        "html": st(502) + b"<html><body>Bad gateway</body></html>",
        "not_object": st(400) + b'["code"]',
        "deep": st(400) + b'{"details":' + b"[" * 5000,
        "empty": st(200),
        "utf8_bad": st(400) + b'{"code":"internal","message":"\xff\xfe"}',
    }


def _lines(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode("latin-1")


def connect_client_response() -> dict[str, bytes]:
    # status index 0 = 200, 3 = 400, 9 = 502; codec 0 = proto, 1 = json
    ok_stream = encode_envelope(0, b"\x08\x01") + _end_stream({})
    gz = _comp("gzip")
    return {
        "unary_ok": bytes([0, 0, 0, LIMIT_NONE, 0, 0])
        + _lines("content-type: application/proto", "trailer-x: 1", "")
        + b"\x08\x01",
        "unary_gzip": bytes([0, 0, 1, LIMIT_1000, 3, 0])
        + _lines("content-type: application/json", "content-encoding: gzip", "")
        + gz.compress(b'{"a":1}'),
        "unary_error_json": bytes([3, 0, 0, LIMIT_NONE, 0, 0])
        + _lines("content-type: application/json", "trailer-y: 2", "")
        + json.dumps(ERROR_WITH_DETAIL).encode(),
        "unary_error_gzip": bytes([9, 0, 0, LIMIT_1000, 0, 1])
        + _lines("Content-Type: application/json; charset=utf-8", "content-encoding: gzip", "")
        + gz.compress(json.dumps(ERROR_OBJ).encode()),
        "unary_error_bogus_encoding": bytes([3, 0, 0, LIMIT_NONE, 0, 0])
        + _lines("content-type: application/json", "content-encoding: lz4", "")
        + b"{}",
        "unary_wrong_type": bytes([0, 0, 0, LIMIT_NONE, 0, 0])
        + _lines("content-type: text/html", "")
        + b"<html>",
        "stream_ok": bytes([0, 1, 0, LIMIT_NONE, 5, 0])
        + _lines("content-type: application/connect+proto", "")
        + ok_stream,
        "stream_zstd": bytes([0, 1, 1, LIMIT_64K, 0, 1])
        + _lines("content-type: application/connect+json", "connect-content-encoding: zstd", "")
        + encode_envelope(1, _comp("zstd").compress(b"{}"))
        + _end_stream({"error": {"code": "aborted"}}),
        "stream_wrong_codec": bytes([0, 1, 0, LIMIT_NONE, 0, 0])
        + _lines("content-type: application/connect+json", "")
        + ok_stream,
    }


def connect_headers() -> dict[str, bytes]:
    return {
        "valid": bytes([0, 0, 7]) + _lines("1000", "gzip, br;q=0.5", "application/proto", ""),
        "max_timeout": bytes([0, 3, 1]) + _lines("9999999999", "zstd", "application/json", "x: y"),
        "long_timeout": bytes([0, 0, 7]) + _lines("12345678901", "", "application/connect+proto"),
        "unicode_digit_utf8": bytes([1, 0, 7]) + "\u00b2\n\n\n".encode(),
        "unicode_digit_latin1": bytes([0, 0, 7]) + b"1\xb2\n\n\n",
        "arabic_digits_utf8": bytes([1, 0, 7]) + "\u0661\u0662\n\n\n".encode(),
        "signs": bytes([0, 0, 7]) + _lines("+10", "GZIP", "Application/JSON; charset=utf-8"),
        "trailers": bytes([0, 3, 0])
        + _lines("0", "identity", "application/json", "trailer-a: 1", "Trailer-B: 2", "c: 3"),
    }


def server_plan_request() -> dict[str, bytes]:
    # method index: stream type * 3 + idempotency (0 unary/unknown, 1 unary/no side effects,
    # 3 client stream, 9 bidi); http method index 0 POST, 1 GET, 2 PUT
    return {
        "unary_post": bytes([0, 0, 7])
        + _lines("content-type: application/proto", "connect-protocol-version: 1", "")
        + b"",
        "unary_post_json_charset": bytes([0, 0, 7])
        + _lines(
            "content-type: application/json; charset=utf-8",
            "content-encoding: gzip",
            "accept-encoding: br, zstd",
            "connect-timeout-ms: 1500",
            "",
        ),
        "stream_post": bytes([9, 0, 3])
        + _lines(
            "content-type: application/connect+proto",
            "connect-content-encoding: zstd",
            "connect-accept-encoding: gzip",
            "",
        ),
        "bad_version": bytes([3, 0, 7])
        + _lines("content-type: application/connect+json", "connect-protocol-version: 2", ""),
        "unknown_compression": bytes([0, 0, 1])
        + _lines("content-type: application/proto", "content-encoding: lz4", ""),
        "get_proto_base64": bytes([1, 1, 7])
        + _lines("accept-encoding: gzip", "")
        + b"connect=v1&encoding=proto&base64=1&message=CAE",
        "get_json": bytes([1, 1, 7]) + _lines("") + b"connect=v1&encoding=json&message=%7B%7D",
        "get_compressed": bytes([1, 1, 7])
        + _lines("connect-timeout-ms: 10", "")
        + b"encoding=proto&compression=gzip&base64=1&message=H4sIAAAAAAAA_wMAAAAAAAAAAAA",
        "get_bad_base64": bytes([1, 1, 7]) + _lines("") + b"encoding=proto&base64=1&message=%%%",
        "get_not_allowed": bytes([0, 1, 7]) + _lines("") + b"encoding=proto",
        "put": bytes([0, 2, 7]) + _lines("content-type: application/proto", ""),
        "timeout_unicode_digit": bytes([0, 0, 7])
        + b"content-type: application/proto\nconnect-timeout-ms: \xb2\n\n",
        "timeout_too_long": bytes([0, 0, 7])
        + _lines("content-type: application/proto", "connect-timeout-ms: 12345678901", ""),
    }


def _decompress_seeds(name: str) -> dict[str, bytes]:
    c = _comp(name)
    text = b"The quick brown fox jumps over the lazy dog. " * 20
    out = {
        "small": bytes([DLIMIT_64K, 0]) + c.compress(b"hello"),
        "small_via_message": bytes([DLIMIT_64K, 1]) + c.compress(b"hello"),
        "empty": bytes([DLIMIT_100, 0]) + c.compress(b""),
        "over_limit": bytes([DLIMIT_100, 1]) + c.compress(text),
        "truncated": bytes([DLIMIT_64K, 0]) + c.compress(text)[:-4],
        "bomb_1mb_zeros": bytes([DLIMIT_1000, 0]) + c.compress(b"\0" * (1 << 20)),
        "trailing_garbage": bytes([DLIMIT_64K, 0]) + c.compress(b"abc") + b"garbage",
    }
    if name == "gzip":
        out["two_members"] = bytes([DLIMIT_64K, 0]) + gzip.compress(b"a", mtime=0) * 2
    if name == "zstd":
        out["bomb_16mb_zeros"] = bytes([DLIMIT_1000, 1]) + c.compress(b"\0" * (16 << 20))
    return out


def _http(
    reset: int, reader: int, split: int, repeat: int, head: bytes, mid: bytes, tail: bytes
) -> bytes:
    params = bytes([reset, reader, split, repeat]) + struct.pack(">HH", len(head), len(mid))
    return params + head + mid + tail


def http1_response() -> dict[str, bytes]:
    ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/proto\r\ncontent-length: 5\r\n\r\nhello"
    chunked = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/connect+proto\r\n"
        b"transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nx-t: 1\r\n\r\n"
    )
    return {
        "content_length": _http(0, 0, 0, 0, ok, b"", b""),
        "content_length_split": _http(0, 0, 3, 0, ok, b"", b""),
        "keep_alive_two": _http(0, 2, 5, 0, ok + ok, b"", b""),
        "chunked": _http(0, 0, 1, 0, chunked, b"", b""),
        "close_delimited": _http(0, 0, 4, 0, b"HTTP/1.0 200 OK\r\n\r\nbody until close", b"", b""),
        "truncated_reset": _http(1, 0, 0, 0, ok[:-2], b"", b""),
        "early_hints": _http(
            0,
            0,
            0,
            0,
            b"HTTP/1.1 103 Early Hints\r\nlink: </a>; rel=preload\r\n\r\n" + ok,
            b"",
            b"",
        ),
        "continue_100": _http(0, 0, 9, 0, b"HTTP/1.1 100 Continue\r\n\r\n" + ok, b"", b""),
        "many_headers": _http(
            0, 0, 0, 255, b"HTTP/1.1 200 OK\r\n", b"x-a: aaaaaaaa\r\n", b"content-length: 0\r\n\r\n"
        ),
        "huge_header_line": _http(
            0,
            0,
            0,
            255,
            b"HTTP/1.1 200 OK\r\nx-big: ",
            b"b" * 128,
            b"\r\ncontent-length: 0\r\n\r\n",
        ),
        "big_body_drained": _http(0, 1, 0, 255, b"HTTP/1.1 200 OK\r\n\r\n", b"z" * 128, b""),
        "big_body_stuck": _http(
            0, 0, 0, 255, b"HTTP/1.1 200 OK\r\ncontent-length: 9999999\r\n\r\n", b"z" * 128, b""
        ),
        "garbage": _http(0, 0, 0, 0, b"HTTP/1.1 2000 OK\r\n\r\n", b"", b""),
        "bad_chunk": _http(
            0, 0, 0, 0, b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", b"", b""
        ),
    }


def grpc_web_response() -> dict[str, bytes]:
    # Parameters: encoding (0 none, 2 gzip), limit, mode, split; then the payload.
    message = encode_envelope(0, b"\x0a\x02hi")
    ok_frame = encode_envelope(0x80, b"grpc-status: 0\r\nx-trailer: t\r\n")
    error_frame = encode_envelope(
        0x80, b"grpc-status: 5\r\ngrpc-message: not%20found\r\ngrpc-status-details-bin: CAU\r\n"
    )
    gzip_message = encode_envelope(1, gzip.compress(b"\x0a\x02hi", mtime=0))
    return {
        "body_ok": bytes([0, LIMIT_64K, 0, 7]) + message + ok_frame,
        "body_error": bytes([0, LIMIT_64K, 0, 3]) + error_frame,
        "body_gzip": bytes([2, LIMIT_64K, 0, 1]) + gzip_message + ok_frame,
        "trailer_lines": bytes([0, LIMIT_NONE, 1, 0]) + b"grpc-status: 3\r\ngrpc-message: bad\r\n",
        "trailers_only": bytes([0, LIMIT_NONE, 2, 0]) + b"grpc-status: 16\r\nx-a: b\r\n\r\n",
        "http_trailers": bytes([0, LIMIT_NONE, 3, 0]) + b"grpc-status: 0\r\n\r\n",
        "over_limit": bytes([0, LIMIT_5, 0, 0]) + encode_envelope(0, b"x" * 64) + ok_frame,
    }


def grpc_headers() -> dict[str, bytes]:
    return {
        "timeout_ms": b"\x00250m",
        "timeout_hours": b"\x0099999999H",
        "timeout_bad": b"\x001.5S",
        "message": b"\x01caf%C3%A9 %zz",
        "details": b"\x02CAUSBWdvbmUaDAoHdHlwZS5UEgEB",
        "trailer_frame": b"\x03grpc-status: 0\r\nGrpc-Message: x\r\n",
    }


SEEDS = {
    "envelope": envelope,
    "connect_stream": connect_stream,
    "connect_error_json": connect_error_json,
    "connect_client_response": connect_client_response,
    "connect_headers": connect_headers,
    "server_plan_request": server_plan_request,
    "decompress_gzip": lambda: _decompress_seeds("gzip"),
    "decompress_br": lambda: _decompress_seeds("br"),
    "decompress_zstd": lambda: _decompress_seeds("zstd"),
    "decompress_deflate": lambda: _decompress_seeds("deflate"),
    "decompress_snappy": lambda: _decompress_seeds("snappy"),
    "grpc_web_response": grpc_web_response,
    "grpc_headers": grpc_headers,
    "http1_response": http1_response,
}


def main() -> None:
    total = 0
    for target, make in SEEDS.items():
        directory = CORPUS / target
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in make().items():
            (directory / name).write_bytes(data)
            total += len(data)
    print(f"seed corpus: {total} bytes in {CORPUS}", file=sys.stderr)


if __name__ == "__main__":
    main()
