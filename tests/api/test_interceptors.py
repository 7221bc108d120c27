"""Interceptors on our client and our server, over the in-memory transport.

Covers the hook order for nested interceptors on both sides, the short-circuit rule, header
changes, message observation and replacement on every stream type, sync and async hooks,
and ``on_end`` running exactly once with the right outcome (success, error, deadline,
cancellation).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.protobuf.message import Message

from connectrpc.client import AsyncConnectClient, ClientOptions
from connectrpc.errors import Code, ConnectError
from connectrpc.interceptors import Call, Interceptor
from connectrpc.server import ServerOptions
from connectrpc.testing import ASGITransport

from ._service import CONCAT, ECHO, FAIL, SLOW, SPLIT, UPPER, EchoService, S, make_app

Log = list[str]


class Recorder(Interceptor):
    """Records every hook as ``name:hook[:detail]``."""

    def __init__(self, name: str, log: Log) -> None:
        self.name = name
        self.log = log
        self.calls: list[Call] = []
        self.errors: list[ConnectError | None] = []

    def on_start(self, call: Call) -> None:
        self.calls.append(call)
        self.log.append(f"{self.name}:start")

    def on_request(self, call: Call, message: Message) -> None:
        assert isinstance(message, S)
        self.log.append(f"{self.name}:request:{message.value}")

    def on_response(self, call: Call, message: Message) -> None:
        assert isinstance(message, S)
        self.log.append(f"{self.name}:response:{message.value}")

    def on_end(self, call: Call, error: ConnectError | None) -> None:
        self.errors.append(error)
        self.log.append(f"{self.name}:end:{error.code.value if error else 'ok'}")


class AsyncRecorder(Recorder):
    """The same hooks as coroutines: async code awaits them."""

    async def on_start(self, call: Call) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        super().on_start(call)

    async def on_end(self, call: Call, error: ConnectError | None) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        super().on_end(call, error)


def make_client(
    client: list[Interceptor] | None = None,
    server: list[Interceptor] | None = None,
    service: EchoService | None = None,
    protocol: str = "connect",
) -> AsyncConnectClient:
    app = make_app(service or EchoService(), ServerOptions(interceptors=server or []))
    options = ClientOptions(protocol=protocol, interceptors=client or [])
    return AsyncConnectClient("http://test:8080", ASGITransport(app), options=options)


@pytest.fixture(params=["connect", "grpc-web", "grpc"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_unary_order_on_both_sides(protocol: str) -> None:
    log: Log = []
    client = make_client(
        client=[Recorder("c1", log), AsyncRecorder("c2", log)],
        server=[Recorder("s1", log), AsyncRecorder("s2", log)],
        protocol=protocol,
    )
    assert await client.unary(ECHO, S(value="x")) == S(value="x")
    assert log == [
        "c1:start",
        "c2:start",
        "c1:request:x",
        "c2:request:x",
        "s1:start",
        "s2:start",
        "s1:request:x",
        "s2:request:x",
        "s2:response:x",
        "s1:response:x",
        "s2:end:ok",
        "s1:end:ok",
        "c2:response:x",
        "c1:response:x",
        "c2:end:ok",
        "c1:end:ok",
    ]


async def test_calls_describe_the_rpc(protocol: str) -> None:
    log: Log = []
    client_side, server_side = Recorder("c", log), Recorder("s", log)
    client = make_client(client=[client_side], server=[server_side], protocol=protocol)
    out = await client.call_unary(
        ECHO, S(value="x"), extra_headers={"x-echo": "hi"}, timeout_seconds=5
    )
    assert out.error() is None
    (c,) = client_side.calls
    (s,) = server_side.calls
    assert c.is_client
    assert not s.is_client
    assert c.method is ECHO
    assert s.method is ECHO
    assert c.protocol == s.protocol == protocol
    assert c.peer is not None
    assert (c.peer.host, c.peer.port) == ("test", 8080)
    assert c.timeout == 5
    assert s.timeout is not None
    assert 0 < s.timeout <= 5
    assert c.request_headers["x-echo"] == "hi"
    assert s.request_headers["x-echo"] == "hi"
    assert c.response_headers["x-echo"] == "hi"
    assert c.response_trailers["x-echo-trailer"] == "done"
    assert s.response_trailers["x-echo-trailer"] == "done"
    assert "Call client" in repr(c)


class BearerToken(Interceptor):
    def __init__(self, token: str) -> None:
        self.token = token

    def on_start(self, call: Call) -> None:
        call.request_headers["authorization"] = f"Bearer {self.token}"


class RequireToken(Interceptor):
    def __init__(self, token: str) -> None:
        self.expected = f"Bearer {token}"

    def on_start(self, call: Call) -> None:
        if call.request_headers.get("authorization") != self.expected:
            raise ConnectError(Code.UNAUTHENTICATED, "a valid bearer token is required")
        call.response_headers["x-authenticated"] = "yes"


async def test_bearer_token_and_server_check(protocol: str) -> None:
    service = EchoService()
    client = make_client([BearerToken("s3cret")], [RequireToken("s3cret")], service, protocol)
    out = await client.call_unary(ECHO, S(value="x"))
    assert out.message() == S(value="x")
    assert out.response_headers()["x-authenticated"] == "yes"

    refused = make_client([BearerToken("wrong")], [RequireToken("s3cret")], service, protocol)
    for call in (
        refused.call_unary(ECHO, S(value="x")),
        refused.call_client_stream(CONCAT, [S(value="a")]),
    ):
        error = (await call).error()
        assert error is not None
        assert error.code is Code.UNAUTHENTICATED
        assert error.message == "a valid bearer token is required"
    stream = await refused.call_server_stream(SPLIT, S(value="ab"))
    assert [m async for m in stream] == []
    error = stream.error()
    assert error is not None
    assert error.code is Code.UNAUTHENTICATED


class Refuse(Recorder):
    def on_start(self, call: Call) -> None:
        super().on_start(call)
        raise ConnectError(Code.PERMISSION_DENIED, f"{self.name} says no")


@pytest.mark.parametrize("side", ["client", "server"])
async def test_short_circuit_skips_inner_interceptors_and_the_call(side: str) -> None:
    log: Log = []
    service = EchoService()
    chain: list[Interceptor] = [Recorder("a", log), Refuse("b", log), Recorder("c", log)]
    client = make_client(
        client=chain if side == "client" else None,
        server=chain if side == "server" else None,
        service=service,
    )
    out = await client.call_unary(FAIL, S(value="never"))
    error = out.error()
    assert error is not None
    assert error.code is Code.PERMISSION_DENIED
    assert error.message == "b says no"
    # c never started, so it sees no end; b and a end (innermost first) with b's error.
    assert log == ["a:start", "b:start", "b:end:permission_denied", "a:end:permission_denied"]


class Rewrite(Interceptor):
    """Changes messages both ways, asynchronously."""

    async def on_request(self, call: Call, message: Message) -> Message:
        assert isinstance(message, S)
        return S(value=message.value + "+req")

    async def on_response(self, call: Call, message: Message) -> Message:
        assert isinstance(message, S)
        return S(value=message.value + "+res")


@pytest.mark.parametrize("side", ["client", "server"])
async def test_messages_are_replaced_on_every_stream_type(side: str, protocol: str) -> None:
    rewrite: list[Interceptor] = [Rewrite()]
    client = make_client(
        client=rewrite if side == "client" else None,
        server=rewrite if side == "server" else None,
        protocol=protocol,
    )
    assert await client.unary(ECHO, S(value="u")) == S(value="u+req+res")
    assert await client.client_stream(CONCAT, [S(value="a"), S(value="b")]) == S(
        value="a+reqb+req+res"
    )
    assert [m.value async for m in client.server_stream(SPLIT, S(value="xy"))] == [
        # the request "xy" became "xy+req", split into characters
        f"{ch}+res"
        for ch in "xy+req"
    ]

    async def requests() -> AsyncIterator[S]:
        yield S(value="p")
        yield S(value="q")

    assert [m.value async for m in client.bidi_stream(UPPER, requests())] == [
        "P+REQ+res",
        "Q+REQ+res",
    ]


@pytest.mark.parametrize("side", ["client", "server"])
async def test_stream_messages_are_observed_in_order(side: str) -> None:
    log: Log = []
    recorder: list[Interceptor] = [Recorder("i", log)]
    client = make_client(
        client=recorder if side == "client" else None,
        server=recorder if side == "server" else None,
    )
    replies = [m.value async for m in client.bidi_stream(UPPER, [S(value="a"), S(value="b")])]
    assert replies == ["A", "B"]
    assert log[0] == "i:start"
    assert log[-1] == "i:end:ok"
    assert [e for e in log if ":request:" in e] == ["i:request:a", "i:request:b"]
    assert [e for e in log if ":response:" in e] == ["i:response:A", "i:response:B"]


@pytest.mark.parametrize("side", ["client", "server"])
async def test_errors_reach_on_end(side: str, protocol: str) -> None:
    log: Log = []
    recorder = Recorder("i", log)
    client = make_client(
        client=[recorder] if side == "client" else None,
        server=[recorder] if side == "server" else None,
        protocol=protocol,
    )
    out = await client.call_unary(FAIL, S(value="nope"))
    assert out.error() is not None
    stream = await client.call_server_stream(SPLIT, S(value="a!"))
    assert [m.value async for m in stream] == ["a"]
    crash = await client.call_unary(FAIL, S(value="crash"))
    assert crash.error() is not None
    codes = [e.code if e else None for e in recorder.errors]
    assert codes == [Code.FAILED_PRECONDITION, Code.ABORTED, Code.INTERNAL]
    if side == "client":
        error = recorder.errors[1]
        assert error is not None
        assert recorder.calls[1].response_headers["x-count"] == "2"


@pytest.mark.parametrize("side", ["client", "server"])
async def test_deadline_reaches_on_end(side: str) -> None:
    log: Log = []
    recorder = Recorder("i", log)
    service = EchoService()
    client = make_client(
        client=[recorder] if side == "client" else None,
        server=[recorder] if side == "server" else None,
        service=service,
    )
    out = await client.call_unary(SLOW, S(value="5"), timeout_seconds=0.1)
    error = out.error()
    assert error is not None
    assert error.code is Code.DEADLINE_EXCEEDED
    await asyncio.wait_for(service.cancelled.wait(), 5)
    for _ in range(100):
        if recorder.errors:
            break
        await asyncio.sleep(0.01)
    (ended,) = recorder.errors
    assert ended is not None
    assert ended.code is Code.DEADLINE_EXCEEDED


async def test_closing_a_client_stream_early_ends_it_as_canceled() -> None:
    log: Log = []
    recorder = Recorder("i", log)
    client = make_client(client=[recorder])
    async with await client.call_server_stream(SPLIT, S(value="abcdef")) as stream:
        async for message in stream:
            assert message.value == "a"
            break
    await stream.close()  # twice: still one end
    (ended,) = recorder.errors
    assert ended is not None
    assert ended.code is Code.CANCELED


class Failing(Interceptor):
    def on_end(self, call: Call, error: ConnectError | None) -> None:
        raise RuntimeError("broken interceptor")


async def test_a_failing_on_end_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    client = make_client(client=[Failing()], server=[Failing()])
    with caplog.at_level(logging.ERROR, logger="connectrpc.interceptors"):
        assert await client.unary(ECHO, S(value="x")) == S(value="x")
    assert sum("broken interceptor" in (r.exc_text or "") for r in caplog.records) == 2


def test_interceptors_must_be_instances() -> None:
    with pytest.raises(TypeError, match=r"pass Recorder\(\)"):
        make_client(client=[Recorder])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not an interceptor"):
        make_client(server=[object()])  # type: ignore[list-item]


async def test_request_errors_from_an_interceptor_fail_the_call() -> None:
    class Reject(Interceptor):
        def on_request(self, call: Call, message: Message) -> None:
            assert isinstance(message, S)
            if message.value == "bad":
                raise ConnectError(Code.INVALID_ARGUMENT, "bad message")

    for side in ("client", "server"):
        chain: list[Any] = [Reject()]
        client = make_client(
            client=chain if side == "client" else None,
            server=chain if side == "server" else None,
        )
        out = await client.call_unary(ECHO, S(value="bad"))
        error = out.error()
        assert error is not None, side
        assert error.code is Code.INVALID_ARGUMENT
        streamed = await client.call_client_stream(CONCAT, [S(value="ok"), S(value="bad")])
        error = streamed.error()
        assert error is not None, side
        assert error.code is Code.INVALID_ARGUMENT, (side, error)


class AsyncRefuse(Recorder):
    async def on_start(self, call: Call) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        super().on_start(call)
        raise ConnectError(Code.PERMISSION_DENIED, f"{self.name} says no")


@pytest.mark.parametrize("side", ["client", "server"])
async def test_short_circuit_from_an_async_hook_after_sync_ones(side: str) -> None:
    log: Log = []
    chain: list[Interceptor] = [
        Recorder("a", log),
        AsyncRecorder("b", log),
        AsyncRefuse("c", log),
        Recorder("d", log),
    ]
    client = make_client(
        client=chain if side == "client" else None,
        server=chain if side == "server" else None,
    )
    out = await client.call_unary(ECHO, S(value="x"))
    error = out.error()
    assert error is not None
    assert error.code is Code.PERMISSION_DENIED
    assert log == [
        "a:start",
        "b:start",
        "c:start",
        "c:end:permission_denied",
        "b:end:permission_denied",
        "a:end:permission_denied",
    ]


async def test_mixed_sync_and_async_hooks_keep_their_order() -> None:
    log: Log = []
    chain: list[Interceptor] = [
        AsyncRecorder("a", log),
        Recorder("b", log),
        AsyncRecorder("c", log),
    ]
    client = make_client(client=chain)
    assert await client.unary(ECHO, S(value="x")) == S(value="x")
    assert log == [
        "a:start",
        "b:start",
        "c:start",
        "a:request:x",
        "b:request:x",
        "c:request:x",
        "c:response:x",
        "b:response:x",
        "a:response:x",
        "c:end:ok",
        "b:end:ok",
        "a:end:ok",
    ]
