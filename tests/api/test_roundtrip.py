"""Public API over the in-memory transport: our client against our ASGI app, no sockets."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import pytest
from google.protobuf import wrappers_pb2

from connectrpc.client import AsyncConnectClient, ClientOptions
from connectrpc.errors import Code, ConnectError
from connectrpc.server import (
    ConnectASGIApplication,
    RequestContext,
    ServerOptions,
    unary_handler,
)
from connectrpc.testing import ASGITransport

from ._service import CONCAT, ECHO, FAIL, MISSING, SLOW, SPLIT, UPPER, EchoService, S, make_app

CODECS = ["proto", "json"]
COMPRESSIONS = [None, "gzip", "br", "zstd", "deflate", "snappy"]


@pytest.fixture(params=["connect", "grpc-web", "grpc"])
def protocol(request: pytest.FixtureRequest) -> str:
    """The client's protocol; the server speaks both (and gRPC)."""
    return str(request.param)


def client_for(
    service: EchoService | None = None,
    server_options: ServerOptions | None = None,
    **options: object,
) -> AsyncConnectClient:
    app = make_app(service or EchoService(), server_options)
    return AsyncConnectClient(
        "http://test",
        ASGITransport(app),
        options=ClientOptions(**options),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("compression", COMPRESSIONS)
async def test_unary(codec: str, compression: str | None, protocol: str) -> None:
    client = client_for(protocol=protocol, codec=codec, send_compression=compression)
    out = await client.call_unary(ECHO, S(value="hi" * 1000), extra_headers={"x-echo": "1"})
    assert out.error() is None
    msg = out.message()
    assert msg is not None
    assert msg.value == "hi" * 1000
    assert out.response_headers()["x-echo"] == "1"
    assert out.response_trailers()["x-echo-trailer"] == "done"
    assert "trailer-x-echo-trailer" not in out.response_headers()


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("compression", [None, "gzip"])
async def test_unary_get(codec: str, compression: str | None) -> None:
    client = client_for(codec=codec, send_compression=compression)
    out = await client.call_unary(ECHO, S(value="a b&c=d/é"), use_get=True)
    assert out.error() is None
    assert out.message() == S(value="a b&c=d/é")
    assert out.response_headers()["x-echo-method"] == "GET"


async def test_get_refused_for_side_effects() -> None:
    with pytest.raises(ValueError, match="NO_SIDE_EFFECTS"):
        await client_for().call_unary(FAIL, S(), use_get=True)


@pytest.mark.parametrize("codec", CODECS)
async def test_unary_error_with_details(codec: str, protocol: str) -> None:
    client = client_for(protocol=protocol, codec=codec)
    out = await client.call_unary(FAIL, S(value="nope"))
    err = out.error()
    assert err is not None
    assert err.code is Code.FAILED_PRECONDITION
    assert err.message == "nope"
    assert err.wire
    assert err.details[0].unpack(wrappers_pb2.Int32Value) == wrappers_pb2.Int32Value(value=7)
    assert out.response_trailers()["x-why"] == "asked"
    with pytest.raises(ConnectError) as info:
        await client.unary(FAIL, S(value="nope"))
    assert info.value.code is Code.FAILED_PRECONDITION


async def test_unexpected_exception_is_internal_without_leak(protocol: str) -> None:
    out = await client_for(protocol=protocol).call_unary(FAIL, S(value="crash"))
    err = out.error()
    assert err is not None
    assert err.code is Code.INTERNAL
    assert "secret" not in err.message


async def test_unknown_method_is_unimplemented(protocol: str) -> None:
    out = await client_for(protocol=protocol).call_unary(MISSING, S())
    err = out.error()
    assert err is not None
    assert err.code is Code.UNIMPLEMENTED


async def test_deadline_exceeded_cancels_handler(protocol: str) -> None:
    service = EchoService()
    client = client_for(service, protocol=protocol)
    out = await client.call_unary(SLOW, S(value="5"), timeout_seconds=0.05)
    err = out.error()
    assert err is not None
    assert err.code is Code.DEADLINE_EXCEEDED
    await asyncio.wait_for(service.cancelled.wait(), 1)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("compression", COMPRESSIONS)
async def test_client_stream(codec: str, compression: str | None, protocol: str) -> None:
    client = client_for(protocol=protocol, codec=codec, send_compression=compression)

    async def gen() -> AsyncIterator[S]:
        for part in ("a", "b", "c"):
            yield S(value=part)

    assert await client.client_stream(CONCAT, gen()) == S(value="abc")
    assert await client.client_stream(CONCAT, [S(value="x")] * 3) == S(value="xxx")
    assert await client.client_stream(CONCAT, []) == S(value="")


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("compression", COMPRESSIONS)
async def test_server_stream(codec: str, compression: str | None, protocol: str) -> None:
    client = client_for(protocol=protocol, codec=codec, send_compression=compression)
    got = [m.value async for m in client.server_stream(SPLIT, S(value="abc"))]
    assert got == ["a", "b", "c"]
    output = await client.call_server_stream(SPLIT, S(value="xy"))
    assert output.response_headers()["x-count"] == "2"
    with pytest.raises(RuntimeError, match="trailers"):
        output.response_trailers()
    async with output:
        assert [m.value async for m in output] == ["x", "y"]
    assert output.error() is None
    assert output.response_trailers()["x-end"] == "yes"


async def test_server_stream_error_midway(protocol: str) -> None:
    client = client_for(protocol=protocol)
    output = await client.call_server_stream(SPLIT, S(value="ab!c"))
    async with output:
        assert [m.value async for m in output] == ["a", "b"]
    err = output.error()
    assert err is not None
    assert err.code is Code.ABORTED
    assert output.response_trailers()["x-at"] == "bang"
    with pytest.raises(ConnectError, match="bang"):
        async for _ in client.server_stream(SPLIT, S(value="!")):
            pass


async def test_bidi(protocol: str) -> None:
    client = client_for(protocol=protocol)
    got = [m.value async for m in client.bidi_stream(UPPER, [S(value="a"), S(value="b")])]
    assert got == ["A", "B"]


async def test_receive_limit_after_decompression(protocol: str) -> None:
    # 100 KB of one letter compresses to ~100 bytes; the server must still refuse it.
    client = client_for(
        server_options=ServerOptions(read_max_bytes=10_000), send_compression="gzip"
    )
    out = await client.call_unary(ECHO, S(value="a" * 100_000))
    err = out.error()
    assert err is not None
    assert err.code is Code.RESOURCE_EXHAUSTED
    client = client_for(protocol=protocol, read_max_bytes=10_000)
    out = await client.call_unary(ECHO, S(value="a" * 100_000))
    err = out.error()
    assert err is not None
    assert err.code is Code.RESOURCE_EXHAUSTED


async def test_closing_a_stream_early_cancels_it(protocol: str) -> None:
    client = client_for(protocol=protocol)
    output = await client.call_server_stream(SPLIT, S(value="abcdef"))
    async with output:
        async for message in output:
            assert message.value == "a"
            break
    err = output.error()
    assert err is not None
    assert err.code is Code.CANCELED
    assert len(output.response_trailers()) == 0


async def test_request_context_exposes_the_get_query() -> None:
    """A handler sees the query of a Connect GET, decoded, protocol parameters included."""
    seen: dict[str, list[str]] = {}

    async def echo(request: S, ctx: RequestContext) -> S:
        for key in ctx.query:
            seen[key] = ctx.query.getall(key)
        return request

    app = ConnectASGIApplication([unary_handler(ECHO, echo)])
    client = AsyncConnectClient("http://test", ASGITransport(app))
    assert await client.unary(ECHO, S(value="a b+/"), use_get=True) == S(value="a b+/")
    assert seen["connect"] == ["v1"]
    assert seen["encoding"] == ["proto"]
    assert seen["base64"] == ["1"]
    message = seen["message"][0]
    assert S.FromString(base64.urlsafe_b64decode(message + "=" * (-len(message) % 4))) == S(
        value="a b+/"
    )
    seen.clear()
    assert await client.unary(ECHO, S(value="post")) == S(value="post")
    assert seen == {}


async def test_get_falls_back_to_post_when_the_url_would_be_too_long() -> None:
    methods: list[str] = []

    async def echo(request: S, ctx: RequestContext) -> S:
        methods.append(ctx.http_method)
        return request

    app = ConnectASGIApplication([unary_handler(ECHO, echo)])
    options = ClientOptions(get_url_max_bytes=1000)
    client = AsyncConnectClient("http://test", ASGITransport(app), options=options)
    assert await client.unary(ECHO, S(value="short"), use_get=True) == S(value="short")
    big = S(value="x" * 2000)
    assert await client.unary(ECHO, big, use_get=True) == big
    assert methods == ["GET", "POST"]
