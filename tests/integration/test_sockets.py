"""Our client against our ASGI app under real servers on 127.0.0.1 (hypercorn, uvicorn)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
import uvicorn
from google.protobuf.message import Message
from hypercorn.asyncio import serve
from hypercorn.config import Config

from connectrpc.client import AsyncConnectClient, ClientOptions, HTTP1Transport
from connectrpc.errors import Code, ConnectError
from connectrpc.interceptors import Call, Interceptor
from connectrpc.method import MethodInfo, StreamType
from connectrpc.server import (
    ConnectASGIApplication,
    RequestContext,
    ServerOptions,
    server_stream_handler,
    unary_handler,
)

from ..api._service import CONCAT, ECHO, SLOW, SPLIT, EchoService, S, make_app

FOREVER: MethodInfo[S, S] = MethodInfo("test.v1.Forever", "Stream", S, S, StreamType.SERVER_STREAM)


class Forever:
    def __init__(self) -> None:
        self.cancelled = asyncio.Event()

    async def stream(self, request: S, ctx: RequestContext) -> AsyncIterator[S]:
        try:
            while True:
                yield S(value="tick")
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


def listening_socket() -> socket.socket:
    """A non-blocking TCP socket listening on a free port of 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def _hypercorn(app: ConnectASGIApplication) -> tuple[str, asyncio.Event, asyncio.Task[None]]:
    sock = listening_socket()
    config = Config()
    port = sock.getsockname()[1]
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns the socket from here on
    stop = asyncio.Event()
    task = asyncio.ensure_future(serve(app, config, shutdown_trigger=stop.wait))
    await _serving(port, task)
    return f"http://127.0.0.1:{port}", stop, task


async def _serving(port: int, task: asyncio.Task[None]) -> None:
    """Wait until the server answers HTTP on ``port`` (the listening socket accepts before
    the server is ready to serve, so probe with a real request)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + 10
    while loop.time() < give_up:
        if task.done():
            task.result()  # the server failed to start: raise its error
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            status = await asyncio.wait_for(reader.readline(), 1)
            writer.close()
            if status.startswith(b"HTTP/1.1 "):
                return
        except (OSError, asyncio.TimeoutError):
            pass
        await asyncio.sleep(0.01)
    raise TimeoutError(f"no server answered on port {port}")


async def _uvicorn(app: ConnectASGIApplication) -> tuple[str, uvicorn.Server, asyncio.Task[None]]:
    sock = listening_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, task


def _client(url: str, transport: str, session: aiohttp.ClientSession) -> AsyncConnectClient:
    if transport == "http1":
        return AsyncConnectClient(url, HTTP1Transport())
    return AsyncConnectClient(url, session)


@pytest.mark.parametrize("transport", ["aiohttp", "http1"])
@pytest.mark.parametrize("server", ["hypercorn", "uvicorn"])
async def test_all_shapes_over_sockets(server: str, transport: str) -> None:
    service = EchoService()
    app = make_app(service)
    if server == "hypercorn":
        url, stop, task = await _hypercorn(app)
    else:
        url, uv, task = await _uvicorn(app)
    try:
        async with aiohttp.ClientSession() as session:
            client = _client(url, transport, session)
            assert await client.unary(ECHO, S(value="x")) == S(value="x")
            assert await client.unary(ECHO, S(value="y"), use_get=True) == S(value="y")
            got = [m.value async for m in client.server_stream(SPLIT, S(value="abc"))]
            assert got == ["a", "b", "c"]
            big = [S(value="x" * 1000)] * 300
            assert await client.client_stream(CONCAT, big) == S(value="x" * 300_000)
            out = await client.call_unary(SLOW, S(value="5"), timeout_seconds=0.1)
            err = out.error()
            assert err is not None
            assert err.code is Code.DEADLINE_EXCEEDED
            await asyncio.wait_for(service.cancelled.wait(), 2)
            await client.close()
    finally:
        if server == "hypercorn":
            stop.set()
        else:
            uv.should_exit = True
        await asyncio.wait_for(task, 5)


@pytest.mark.parametrize("transport", ["aiohttp", "http1"])
async def test_client_closing_a_stream_cancels_the_handler(transport: str) -> None:
    forever = Forever()
    app = ConnectASGIApplication([server_stream_handler(FOREVER, forever.stream)])
    url, stop, task = await _hypercorn(app)
    try:
        async with aiohttp.ClientSession() as session:
            client = _client(url, transport, session)
            output = await client.call_server_stream(FOREVER, S())
            async with output:
                async for _ in output:
                    break
            await asyncio.wait_for(forever.cancelled.wait(), 2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_client_deadline_releases_the_connection() -> None:
    service = EchoService()
    url, stop, task = await _hypercorn(make_app(service))
    try:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            client = AsyncConnectClient(url, session)
            for _ in range(3):
                out = await client.call_unary(SLOW, S(value="5"), timeout_seconds=0.05)
                err = out.error()
                assert err is not None
                assert err.code is Code.DEADLINE_EXCEEDED
            # With a pool of one connection, this only works if every timed-out call gave
            # its connection back.
            assert await client.unary(ECHO, S(value="ok"), timeout_seconds=2) == S(value="ok")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_http1_transport_pools_and_recovers() -> None:
    service = EchoService()
    url, stop, task = await _hypercorn(make_app(service))
    transport = HTTP1Transport()
    client = AsyncConnectClient(url, transport)
    try:
        for i in range(20):
            assert await client.unary(ECHO, S(value=str(i))) == S(value=str(i))
        assert sum(len(idle) for idle in transport._idle.values()) == 1
        for _ in range(2):
            out = await client.call_unary(SLOW, S(value="5"), timeout_seconds=0.05)
            err = out.error()
            assert err is not None
            assert err.code is Code.DEADLINE_EXCEEDED
        results = await asyncio.gather(*(client.unary(ECHO, S(value=str(i))) for i in range(32)))
        assert [r.value for r in results] == [str(i) for i in range(32)]
        with pytest.raises(ValueError, match="line break"):
            await client.unary(ECHO, S(), extra_headers={"x-evil": "a\r\nx-injected: 1"})
    finally:
        await client.close()
        stop.set()
        await asyncio.wait_for(task, 5)
    refused = AsyncConnectClient("http://127.0.0.1:9", HTTP1Transport())
    out = await refused.call_unary(ECHO, S())
    err = out.error()
    assert err is not None
    assert err.code is Code.UNAVAILABLE


@pytest.mark.parametrize("transport", ["aiohttp", "http1"])
async def test_early_error_reaches_the_client_despite_unread_upload(transport: str) -> None:
    # The server refuses the first message (over its limit) while the client is still
    # uploading; over HTTP/1.1 the rest of the upload must be drained, or closing the
    # connection resets it and the client loses the error.
    app = make_app(EchoService(), ServerOptions(read_max_bytes=1000))
    url, stop, task = await _hypercorn(app)
    try:
        async with aiohttp.ClientSession() as session:
            client = _client(url, transport, session)
            requests = [S(value="x" * 5000)] + [S(value="y" * 1000)] * 500
            for _ in range(5):
                out = await client.call_client_stream(CONCAT, requests)
                err = out.error()
                assert err is not None
                assert err.code is Code.RESOURCE_EXHAUSTED, err
            await client.close()
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_http1_transport_bounds_connections_per_origin() -> None:
    in_flight = 0
    peak = 0

    async def slow_echo(request: S, ctx: RequestContext) -> S:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return request

    app = ConnectASGIApplication([unary_handler(ECHO, slow_echo)])
    url, stop, task = await _hypercorn(app)
    client = AsyncConnectClient(url, HTTP1Transport(max_connections_per_origin=3))
    try:
        results = await asyncio.gather(*(client.unary(ECHO, S(value=str(i))) for i in range(12)))
        assert [r.value for r in results] == [str(i) for i in range(12)]
        assert peak == 3
        # A call still waiting for a connection when its deadline passes fails with
        # deadline_exceeded, and gives its place back.
        outs = await asyncio.gather(
            *(client.call_unary(ECHO, S(), timeout_seconds=0.02) for _ in range(6))
        )
        # Three calls get connections and time out in the 50 ms handler; three time out
        # still waiting for a connection. Every one reports the deadline.
        codes = [e.code if (e := o.error()) is not None else None for o in outs]
        assert codes == [Code.DEADLINE_EXCEEDED] * 6
        assert peak == 3
        assert await client.unary(ECHO, S(value="after"), timeout_seconds=2) == S(value="after")
    finally:
        await client.close()
        stop.set()
        await asyncio.wait_for(task, 5)


@pytest.mark.parametrize("transport", ["aiohttp", "http1"])
async def test_a_request_stream_that_fails_fails_the_call_with_its_error(transport: str) -> None:
    # The caller's request iterator (or an interceptor's on_request) raising mid-upload
    # must end the call at once with that error, not leave the server waiting for the rest
    # of the body until its read_idle_timeout.
    app = make_app(EchoService())
    url, stop, task = await _hypercorn(app)

    async def requests() -> AsyncIterator[S]:
        yield S(value="a")
        await asyncio.sleep(0.05)
        raise ConnectError(Code.INVALID_ARGUMENT, "the caller gave up")

    try:
        async with aiohttp.ClientSession() as session:
            client = _client(url, transport, session)
            for _ in range(2):  # the connection (if kept) is still usable afterwards
                out = await asyncio.wait_for(client.call_client_stream(CONCAT, requests()), 5)
                err = out.error()
                assert err is not None
                assert err.code is Code.INVALID_ARGUMENT, err
                assert err.message == "the caller gave up"
                assert await client.unary(ECHO, S(value="after")) == S(value="after")
            await client.close()
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


class _Order(Interceptor):
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def on_start(self, call: Call) -> None:
        self.log.append(f"{self.name}:start")
        if not call.is_client and call.request_headers.get("authorization") != "Bearer t":
            raise ConnectError(Code.UNAUTHENTICATED, "no token")

    def on_response(self, call: Call, message: Message) -> None:
        self.log.append(f"{self.name}:response")

    def on_end(self, call: Call, error: ConnectError | None) -> None:
        self.log.append(f"{self.name}:end:{error.code.value if error else 'ok'}")


class _Token(Interceptor):
    def on_start(self, call: Call) -> None:
        call.request_headers["authorization"] = "Bearer t"


@pytest.mark.parametrize("transport", ["aiohttp", "http1"])
async def test_interceptors_over_sockets(transport: str) -> None:
    log: list[str] = []
    app = make_app(EchoService(), ServerOptions(interceptors=[_Order("s", log)]))
    url, stop, task = await _hypercorn(app)
    try:
        async with aiohttp.ClientSession() as session:
            session_or_transport = HTTP1Transport() if transport == "http1" else session
            client = AsyncConnectClient(
                url,
                session_or_transport,
                options=ClientOptions(interceptors=[_Order("c", log), _Token()]),
            )
            got = [m.value async for m in client.server_stream(SPLIT, S(value="ab"))]
            assert got == ["a", "b"]
            # Each side in order (how the two sides interleave is up to the scheduler).
            assert log[:2] == ["c:start", "s:start"]
            assert [e for e in log if e.startswith("s:")] == [
                "s:start",
                "s:response",
                "s:response",
                "s:end:ok",
            ]
            assert [e for e in log if e.startswith("c:")] == [
                "c:start",
                "c:response",
                "c:response",
                "c:end:ok",
            ]
            refused = AsyncConnectClient(url, session_or_transport)
            out = await refused.call_unary(ECHO, S(value="x"))
            err = out.error()
            assert err is not None
            assert err.code is Code.UNAUTHENTICATED
            await client.close()
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
