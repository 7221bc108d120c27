"""The client facing a broken server: every case ends in a coded ConnectError, no hang."""

from __future__ import annotations

import asyncio
import gzip
import struct
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pytest

from connectrpc.client import AsyncConnectClient, ClientOptions
from connectrpc.errors import Code
from connectrpc.testing import ASGITransport

from ._service import ECHO, SPLIT, S

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def env(flags: int, data: bytes) -> bytes:
    return struct.pack(">BI", flags, len(data)) + data


def fake(status: int, headers: list[tuple[str, str]], body: bytes) -> Any:
    """An ASGI app that ignores the request and answers with fixed bytes."""

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Send) -> None:
        while (await receive()).get("more_body", False):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def client(app: Any, **options: Any) -> AsyncConnectClient:
    return AsyncConnectClient("http://x", ASGITransport(app), options=ClientOptions(**options))


STREAM_CT = [("content-type", "application/connect+proto")]
GOOD = S(value="ok").SerializeToString()
END_OK = env(2, b"{}")


async def stream_error(app: Any, **options: Any) -> tuple[Code, str]:
    output = await asyncio.wait_for(client(app, **options).call_server_stream(SPLIT, S()), 2)
    async with output:
        async for _ in output:
            pass
    err = output.error()
    assert err is not None
    return err.code, err.message


async def unary_error(app: Any, **options: Any) -> tuple[Code, str]:
    out = await asyncio.wait_for(client(app, **options).call_unary(ECHO, S()), 2)
    err = out.error()
    assert err is not None
    return err.code, err.message


async def test_truncated_envelope() -> None:
    code, msg = await stream_error(fake(200, STREAM_CT, env(0, GOOD)[:-1]))
    assert code is Code.INTERNAL
    assert "ended after" in msg


async def test_truncated_prefix() -> None:
    code, msg = await stream_error(fake(200, STREAM_CT, b"\x00\x00"))
    assert code is Code.INTERNAL
    assert "prefix" in msg


async def test_compressed_flag_without_encoding() -> None:
    code, msg = await stream_error(fake(200, STREAM_CT, env(1, GOOD) + END_OK))
    assert code is Code.INTERNAL
    assert "connect-content-encoding" in msg


async def test_unknown_flags() -> None:
    code, msg = await stream_error(fake(200, STREAM_CT, env(0x40, GOOD) + END_OK))
    assert code is Code.INTERNAL
    assert "flags" in msg


async def test_corrupt_compressed_message() -> None:
    headers = [*STREAM_CT, ("connect-content-encoding", "gzip")]
    code, msg = await stream_error(fake(200, headers, env(1, b"not gzip") + END_OK))
    assert code is Code.INTERNAL
    assert "decompress" in msg


async def test_unsupported_response_encoding() -> None:
    headers = [*STREAM_CT, ("connect-content-encoding", "lz4")]
    code, msg = await stream_error(fake(200, headers, END_OK))
    assert code is Code.INTERNAL
    assert "lz4" in msg


async def test_invalid_end_stream_json() -> None:
    code, msg = await stream_error(fake(200, STREAM_CT, env(2, b"{not json")))
    assert code is Code.INTERNAL
    assert "end-of-stream" in msg


async def test_missing_end_stream() -> None:
    code, msg = await stream_error(fake(200, STREAM_CT, env(0, GOOD)))
    assert code is Code.INTERNAL
    assert "without an end-of-stream" in msg


async def test_data_after_end_stream() -> None:
    code, _ = await stream_error(fake(200, STREAM_CT, END_OK + env(0, GOOD)))
    assert code is Code.INTERNAL


async def test_invalid_message_bytes() -> None:
    code, msg = await stream_error(fake(200, STREAM_CT, env(0, b"\xff\xff\xff") + END_OK))
    assert code is Code.INTERNAL
    assert "decode" in msg


async def test_invalid_json_message() -> None:
    headers = [("content-type", "application/json")]
    code, msg = await unary_error(fake(200, headers, b"{oops"), codec="json")
    assert code is Code.INTERNAL
    assert "JSON" in msg


async def test_unknown_content_type() -> None:
    code, msg = await unary_error(fake(200, [("content-type", "text/html")], b"<html>"))
    assert code is Code.UNKNOWN
    assert "content-type" in msg
    code, _ = await stream_error(fake(200, [("content-type", "text/html")], b"<html>"))
    assert code is Code.UNKNOWN


async def test_codec_mismatch() -> None:
    code, _ = await unary_error(fake(200, [("content-type", "application/json")], b"{}"))
    assert code is Code.INTERNAL


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, Code.INTERNAL),
        (401, Code.UNAUTHENTICATED),
        (403, Code.PERMISSION_DENIED),
        (404, Code.UNIMPLEMENTED),
        (429, Code.UNAVAILABLE),
        (502, Code.UNAVAILABLE),
        (503, Code.UNAVAILABLE),
        (504, Code.UNAVAILABLE),
        (500, Code.UNKNOWN),
    ],
)
async def test_http_status_without_connect_body(status: int, expected: Code) -> None:
    code, _ = await unary_error(fake(status, [("content-type", "text/plain")], b"proxy says no"))
    assert code is expected
    code, _ = await stream_error(fake(status, [("content-type", "text/plain")], b""))
    assert code is expected


async def test_error_json_garbage_falls_back_to_status() -> None:
    code, _ = await unary_error(fake(503, [("content-type", "application/json")], b"[1,"))
    assert code is Code.UNAVAILABLE


async def test_compressed_error_body() -> None:
    body = gzip.compress(b'{"code":"not_found","message":"gone"}')
    headers = [("content-type", "application/json"), ("content-encoding", "gzip")]
    code, msg = await unary_error(fake(404, headers, body))
    assert (code, msg) == (Code.NOT_FOUND, "gone")


async def test_message_over_limit_unary() -> None:
    big = S(value="a" * 5000).SerializeToString()
    code, _ = await unary_error(
        fake(200, [("content-type", "application/proto")], big), read_max_bytes=1000
    )
    assert code is Code.RESOURCE_EXHAUSTED


async def test_message_over_limit_after_decompression() -> None:
    big = gzip.compress(S(value="a" * 50_000).SerializeToString())
    assert len(big) < 1000
    headers = [*STREAM_CT, ("connect-content-encoding", "gzip")]
    code, _ = await stream_error(fake(200, headers, env(1, big) + END_OK), read_max_bytes=1000)
    assert code is Code.RESOURCE_EXHAUSTED
    headers = [("content-type", "application/proto"), ("content-encoding", "gzip")]
    code, _ = await unary_error(fake(200, headers, big), read_max_bytes=1000)
    assert code is Code.RESOURCE_EXHAUSTED


async def test_declared_envelope_size_over_limit_fails_before_body() -> None:
    # Declares 1 GB but sends nothing more: must fail at once, not wait or allocate.
    code, _ = await stream_error(
        fake(200, STREAM_CT, struct.pack(">BI", 0, 1 << 30)), read_max_bytes=1000
    )
    assert code is Code.RESOURCE_EXHAUSTED


async def test_unary_response_with_two_messages_in_client_stream() -> None:
    from ._service import CONCAT

    app = fake(200, STREAM_CT, env(0, GOOD) + env(0, GOOD) + END_OK)
    out = await client(app).call_client_stream(CONCAT, [S()])
    err = out.error()
    assert err is not None
    assert err.code is Code.UNIMPLEMENTED


async def test_connection_refused_is_unavailable() -> None:
    c = AsyncConnectClient("http://127.0.0.1:9")
    try:
        out = await c.call_unary(ECHO, S())
    finally:
        await c.close()
    err = out.error()
    assert err is not None
    assert err.code is Code.UNAVAILABLE
