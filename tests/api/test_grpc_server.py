"""The ASGI app serving gRPC and gRPC-Web, driven with raw ASGI events.

gRPC statuses travel in HTTP trailers (the ASGI ``http.response.trailers`` extension);
gRPC-Web's travel in a final body frame flagged 0x80. Every outcome, errors included, is an
HTTP 200 whose status fields say what happened.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import MutableMapping
from typing import Any

import pytest
from google.protobuf import wrappers_pb2
from multidict import CIMultiDict

from connectrpc._protocol.grpc import decode_trailers_frame, error_from_trailers
from connectrpc.errors import Code

from ._service import EchoService, S, make_app


def env(flags: int, data: bytes) -> bytes:
    return struct.pack(">BI", flags, len(data)) + data


def frames(body: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(body):
        flags, length = struct.unpack(">BI", body[pos : pos + 5])
        out.append((flags, body[pos + 5 : pos + 5 + length]))
        pos += 5 + length
    return out


class Result:
    def __init__(self, sent: list[MutableMapping[str, Any]]) -> None:
        self.sent = sent
        start = sent[0]
        assert start["type"] == "http.response.start"
        self.status: int = start["status"]
        self.headers = CIMultiDict((k.decode(), v.decode()) for k, v in start["headers"])
        self.body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        trailer_messages = [m for m in sent if m["type"] == "http.response.trailers"]
        self.http_trailers: CIMultiDict[str] | None = None
        if trailer_messages:
            assert start.get("trailers") is True, "trailers must be announced in the start"
            self.http_trailers = CIMultiDict(
                (k.decode(), v.decode()) for k, v in trailer_messages[0]["headers"]
            )

    def messages(self) -> list[bytes]:
        return [data for flags, data in frames(self.body) if not flags & 0x80]

    def status_fields(self) -> CIMultiDict[str]:
        """Where the status is: HTTP trailers, a gRPC-Web trailers frame, or the headers."""
        if self.http_trailers is not None:
            return self.http_trailers
        web = [data for flags, data in frames(self.body) if flags & 0x80]
        if web:
            return CIMultiDict(decode_trailers_frame(web[-1]))
        return self.headers


async def call(
    path: str,
    content_type: str,
    body: bytes,
    *,
    trailers_extension: bool = True,
    headers: dict[str, str] | None = None,
    http_version: str = "2",
) -> Result:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": http_version,
        "method": "POST",
        "scheme": "http",
        "path": path,
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", content_type.encode()),
            (b"te", b"trailers"),
            *((k.encode(), v.encode()) for k, v in (headers or {}).items()),
        ],
        "client": ("127.0.0.1", 1),
        "extensions": {"http.response.trailers": {}} if trailers_extension else {},
    }
    pieces = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pieces:
            return pieces.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(make_app(EchoService())(scope, receive, send), 3)
    return Result(sent)


ECHO = "/test.v1.EchoService/Echo"
FAIL = "/test.v1.EchoService/Fail"
SPLIT = "/test.v1.EchoService/Split"
GRPC = "application/grpc"
WEB = "application/grpc-web+proto"


@pytest.mark.parametrize("content_type", [GRPC, "application/grpc+proto", WEB])
async def test_unary_success(content_type: str) -> None:
    result = await call(ECHO, content_type, env(0, S(value="hi").SerializeToString()))
    assert result.status == 200
    assert result.headers["content-type"] == content_type
    assert result.headers["x-echo-method"] == "POST"
    assert [S.FromString(m) for m in result.messages()] == [S(value="hi")]
    fields = result.status_fields()
    assert fields["grpc-status"] == "0"
    assert fields["x-echo-trailer"] == "done"
    if content_type == WEB:
        assert result.http_trailers is None
    else:
        assert result.http_trailers is not None


@pytest.mark.parametrize("content_type", [GRPC, WEB])
async def test_error_with_details_goes_in_the_status_fields(content_type: str) -> None:
    result = await call(FAIL, content_type, env(0, S(value="nope").SerializeToString()))
    assert result.status == 200
    assert result.messages() == []
    error = error_from_trailers(result.status_fields())
    assert error is not None
    assert (error.code, error.message) == (Code.FAILED_PRECONDITION, "nope")
    assert error.details[0].unpack(wrappers_pb2.Int32Value) == wrappers_pb2.Int32Value(value=7)
    assert result.status_fields()["x-why"] == "asked"


async def test_server_stream_over_grpc_web_json() -> None:
    body = env(0, b'"abc"')
    result = await call(SPLIT, "application/grpc-web+json", body)
    assert result.messages() == [b'"a"', b'"b"', b'"c"']
    assert result.status_fields()["grpc-status"] == "0"
    assert result.status_fields()["x-end"] == "yes"


@pytest.mark.parametrize("content_type", [GRPC, WEB])
async def test_unknown_method_is_an_unimplemented_status(content_type: str) -> None:
    result = await call("/test.v1.EchoService/Nope", content_type, env(0, b""))
    assert result.status == 200
    error = error_from_trailers(result.status_fields())
    assert error is not None
    assert error.code is Code.UNIMPLEMENTED


async def test_grpc_without_trailers_is_refused_with_a_reason() -> None:
    result = await call(ECHO, GRPC, env(0, b""), trailers_extension=False, http_version="1.1")
    assert result.status == 200
    assert result.http_trailers is None
    error = error_from_trailers(result.headers)  # trailers-only: the status in the headers
    assert error is not None
    assert error.code is Code.UNAVAILABLE
    assert "trailers" in error.message
    # gRPC-Web needs no trailers, so the same server serves it.
    web = await call(ECHO, WEB, env(0, b""), trailers_extension=False, http_version="1.1")
    assert web.status_fields()["grpc-status"] == "0"


@pytest.mark.parametrize(
    ("headers", "code", "needle"),
    [
        ({"grpc-timeout": "1x"}, Code.INVALID_ARGUMENT, "grpc-timeout"),
        ({"grpc-timeout": "123456789S"}, Code.INVALID_ARGUMENT, "grpc-timeout"),
        ({"grpc-encoding": "lz4"}, Code.UNIMPLEMENTED, "lz4"),
    ],
)
async def test_bad_request_heads_are_statuses(
    headers: dict[str, str], code: Code, needle: str
) -> None:
    result = await call(ECHO, GRPC, env(0, b""), headers=headers)
    error = error_from_trailers(result.status_fields())
    assert error is not None
    assert error.code is code
    assert needle in error.message
    assert "gzip" in result.headers["grpc-accept-encoding"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (env(0x80, b"grpc-status: 0\r\n"), Code.INVALID_ARGUMENT),  # a trailers frame from a client
        (env(0x02, b"{}"), Code.INVALID_ARGUMENT),  # a bad flag
        (env(0, b"\x0a")[:-1], Code.INVALID_ARGUMENT),  # truncated
        (env(1, b"x"), Code.INTERNAL),  # compressed without grpc-encoding
    ],
)
async def test_bad_frames_are_statuses(body: bytes, code: Code) -> None:
    for content_type in (GRPC, WEB):
        result = await call(ECHO, content_type, body)
        error = error_from_trailers(result.status_fields())
        assert error is not None
        assert error.code is code, (content_type, error)


async def test_grpc_timeout_is_enforced() -> None:
    slow = "/test.v1.EchoService/Slow"
    result = await call(
        slow, GRPC, env(0, S(value="5").SerializeToString()), headers={"grpc-timeout": "100m"}
    )
    error = error_from_trailers(result.status_fields())
    assert error is not None
    assert error.code is Code.DEADLINE_EXCEEDED


async def test_compressed_response_when_the_client_accepts_it() -> None:
    import gzip

    big = S(value="x" * 5000).SerializeToString()
    result = await call(ECHO, GRPC, env(0, big), headers={"grpc-accept-encoding": "gzip"})
    assert result.headers["grpc-encoding"] == "gzip"
    [(flags, data)] = [f for f in frames(result.body) if not f[0] & 0x80]
    assert flags == 1
    assert gzip.decompress(data) == big


async def test_oversized_message_is_checked_after_decompression() -> None:
    """A small gzip body that inflates past the server's limit is resource_exhausted."""
    import gzip

    from connectrpc.server import ServerOptions

    bomb = gzip.compress(S(value="a" * 100_000).SerializeToString())
    assert len(bomb) < 1000
    app = make_app(EchoService(), ServerOptions(read_max_bytes=10_000))
    scope = {
        "type": "http",
        "http_version": "2",
        "method": "POST",
        "path": ECHO,
        "query_string": b"",
        "headers": [
            (b"content-type", b"application/grpc"),
            (b"grpc-encoding", b"gzip"),
            (b"te", b"trailers"),
        ],
        "extensions": {"http.response.trailers": {}},
    }
    sent: list[MutableMapping[str, Any]] = []
    body = [{"type": "http.request", "body": env(1, bomb), "more_body": False}]

    async def receive() -> dict[str, Any]:
        if body:
            return body.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), 3)
    error = error_from_trailers(Result(sent).status_fields())
    assert error is not None
    assert error.code is Code.RESOURCE_EXHAUSTED
    assert "10000" in error.message
