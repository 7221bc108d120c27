"""HTTP2Transport against our ASGI app under hypercorn (h2c and TLS), and against a raw h2
server that misbehaves on purpose (``_h2server``): GOAWAY, RST_STREAM, flow-control stalls,
unanswered PINGs, dropped sockets. Every test is bounded in time and checks that no stream
or task outlives its calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import h2.errors
import h2.settings
import pytest
import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config
from multidict import CIMultiDict

from connectrpc._transports.base import HTTPRequest
from connectrpc._transports.http2 import HTTP2Transport
from connectrpc.client import AsyncConnectClient, ClientOptions
from connectrpc.errors import Code, ConnectError
from connectrpc.hypercorn import patch_hypercorn_h2
from connectrpc.method import MethodInfo, StreamType
from connectrpc.server import (
    ConnectASGIApplication,
    RequestContext,
    ServerOptions,
    server_stream_handler,
)

from ..api._service import (
    CONCAT,
    ECHO,
    FAIL,
    SERVICE,
    SLOW,
    SPLIT,
    UPPER,
    EchoService,
    S,
    make_app,
)
from ._h2server import H2Server, ServerConn, ServerStream, unary_body
from .test_sockets import listening_socket

E = h2.errors.ErrorCodes

BIG: MethodInfo[S, S] = MethodInfo(SERVICE, "Big", S, S, StreamType.SERVER_STREAM)
CHUNK = 256 * 1024


async def _big(request: S, ctx: RequestContext) -> AsyncIterator[S]:
    """64 messages of 256 KiB: far more than a stream's receive window."""
    for _ in range(64):
        yield S(value="b" * CHUNK)


ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


def _app(service: EchoService) -> ASGIApp:
    """The test service, plus ``BIG``: a server stream far larger than a stream window."""
    app = make_app(service, ServerOptions(read_max_bytes=64 * 1024 * 1024))
    big = ConnectASGIApplication(
        [server_stream_handler(BIG, _big)], options=ServerOptions(read_max_bytes=None)
    )

    async def both(scope: Any, receive: Any, send: Any) -> None:
        target = big if scope.get("path", "").endswith("/Big") else app
        await target(scope, receive, send)

    return both


# --- helpers --------------------------------------------------------------------------------


def bounded(seconds: float) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., Any]]:
    """Fail a test that takes longer than ``seconds`` instead of letting it hang."""

    def wrap(test: Callable[..., Awaitable[None]]) -> Callable[..., Any]:
        @functools.wraps(test)
        async def run(*args: Any, **kwargs: Any) -> None:
            await asyncio.wait_for(test(*args, **kwargs), seconds)

        return run

    return wrap


def _client_side(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` is the client's (hypercorn runs a few tasks per connection)."""
    code = getattr(task.get_coro(), "cr_code", None)
    return code is None or "hypercorn" not in code.co_filename


@contextlib.asynccontextmanager
async def no_leaks(transport: HTTP2Transport) -> AsyncIterator[None]:
    """The block leaves no client task behind and no stream open on ``transport``."""
    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()
    extra: set[asyncio.Task[Any]] = set()
    for _ in range(100):
        extra = {
            t
            for t in asyncio.all_tasks() - before
            if t is not current and not t.done() and _client_side(t)
        }
        if not extra and transport.open_streams() == 0:
            return
        await asyncio.sleep(0.01)
    assert transport.open_streams() == 0
    assert not extra, f"tasks left behind: {extra}"


def _grpc_client(url: str, transport: HTTP2Transport) -> AsyncConnectClient:
    """A client speaking gRPC proper."""
    return AsyncConnectClient(url, transport, options=ClientOptions(protocol="grpc"))


def _client(url: str, transport: HTTP2Transport, protocol: str) -> AsyncConnectClient:
    if protocol == "grpc":
        return _grpc_client(url, transport)
    return AsyncConnectClient(url, transport, options=ClientOptions(protocol=protocol))


class Served:
    def __init__(
        self,
        url: str,
        ssl_context: ssl.SSLContext | None,
        service: EchoService,
        ca: trustme.CA | None,
    ) -> None:
        self.url = url
        self.ssl_context = ssl_context
        self.service = service
        self.ca = ca

    def transport(self, **kwargs: Any) -> HTTP2Transport:
        return HTTP2Transport(ssl_context=self.ssl_context, **kwargs)


@contextlib.asynccontextmanager
async def hypercorn(tmp_path: Path, tls: bool, mutual: bool = False) -> AsyncIterator[Served]:
    """Our ASGI app under hypercorn on 127.0.0.1, over h2c or TLS (ALPN h2)."""
    patch_hypercorn_h2()
    service = EchoService()
    sock = listening_socket()
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.accesslog = None
    config.graceful_timeout = 1.0
    client_context = None
    ca = None
    if tls:
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1")
        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        for index, blob in enumerate(leaf.cert_chain_pems):
            blob.write_to_path(str(cert), append=index > 0)
        leaf.private_key_pem.write_to_path(str(key))
        config.certfile, config.keyfile = str(cert), str(key)
        client_context = ssl.create_default_context()
        ca.configure_trust(client_context)
        if mutual:
            ca_file = tmp_path / "ca.pem"
            ca.cert_pem.write_to_path(str(ca_file))
            config.ca_certs = str(ca_file)
            config.verify_mode = ssl.CERT_REQUIRED
            ca.issue_cert("client@example.com").configure_cert(client_context)
    stop = asyncio.Event()
    task = asyncio.ensure_future(serve(_app(service), config, shutdown_trigger=stop.wait))
    try:
        await _ready(port, task, tls)
        scheme = "https" if tls else "http"
        yield Served(f"{scheme}://127.0.0.1:{port}", client_context, service, ca)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def _ready(port: int, task: asyncio.Task[None], tls: bool) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + 5
    while loop.time() < give_up:
        if task.done():
            task.result()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            await asyncio.sleep(0.05)  # the listening socket accepts before serving starts
            return
        except OSError:
            await asyncio.sleep(0.01)
    raise TimeoutError(f"no server on port {port}")


@pytest.fixture(params=["h2c", "tls"])
async def served(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Served]:
    async with hypercorn(tmp_path, request.param == "tls") as s:
        yield s


@pytest.fixture
async def h2c(tmp_path: Path) -> AsyncIterator[Served]:
    async with hypercorn(tmp_path, False) as s:
        yield s


# --- against hypercorn ------------------------------------------------------------------------


async def _duplex_upper(client: AsyncConnectClient, words: list[str]) -> list[str]:
    """A bidi call whose request stream waits for each reply before sending the next."""
    replies: asyncio.Queue[str] = asyncio.Queue()

    async def requests() -> AsyncIterator[S]:
        for word in words:
            yield S(value=word)
            assert await replies.get() == word.upper()

    got = []
    output = await client.call_bidi_stream(UPPER, requests(), timeout_seconds=4)
    async with output:
        async for reply in output:
            got.append(reply.value)
            replies.put_nowait(reply.value)
    assert output.error() is None
    return got


@pytest.mark.parametrize("protocol", ["connect", "grpc-web", "grpc"])
@bounded(5)
async def test_all_shapes(served: Served, protocol: str) -> None:
    transport = served.transport()
    client = _client(served.url, transport, protocol)
    async with no_leaks(transport):
        out = await client.call_unary(ECHO, S(value="x"), extra_headers={"x-echo": "hi"})
        assert out.message() == S(value="x")
        assert out.response_headers()["x-echo"] == "hi"
        assert out.response_trailers()["x-echo-trailer"] == "done"
        if protocol == "connect":
            assert await client.unary(ECHO, S(value="y"), use_get=True) == S(value="y")
        got = [m.value async for m in client.server_stream(SPLIT, S(value="abc"))]
        assert got == ["a", "b", "c"]
        big = [S(value="x" * 1000)] * 300
        assert await client.client_stream(CONCAT, big) == S(value="x" * 300_000)
        assert await _duplex_upper(client, ["a", "b", "c"]) == ["A", "B", "C"]
        failed = await client.call_unary(FAIL, S(value="no"))
        error = failed.error()
        assert error is not None
        assert error.code is Code.FAILED_PRECONDITION
        assert error.message == "no"
        assert failed.response_trailers()["x-why"] == "asked"
        late = await client.call_unary(SLOW, S(value="5"), timeout_seconds=0.2)
        late_error = late.error()
        assert late_error is not None
        assert late_error.code is Code.DEADLINE_EXCEEDED
        await asyncio.wait_for(served.service.cancelled.wait(), 2)
        assert transport.open_connections() == 1
    await transport.aclose()
    assert transport.open_connections() == 0


@bounded(5)
async def test_client_certificates(tmp_path: Path) -> None:
    async with hypercorn(tmp_path, tls=True, mutual=True) as s:
        transport = s.transport()
        client = AsyncConnectClient(s.url, transport)
        assert await client.unary(ECHO, S(value="mtls")) == S(value="mtls")
        await transport.aclose()
        # Without a client certificate the server refuses the handshake.
        assert s.ca is not None
        anonymous = ssl.create_default_context()
        s.ca.configure_trust(anonymous)
        transport = HTTP2Transport(ssl_context=anonymous)
        out = await AsyncConnectClient(s.url, transport).call_unary(ECHO, S())
        error = out.error()
        assert error is not None
        assert error.code is Code.UNAVAILABLE
        await transport.aclose()


@bounded(5)
async def test_full_duplex_bidi_does_not_deadlock(h2c: Served) -> None:
    transport = h2c.transport()
    client = AsyncConnectClient(h2c.url, transport)
    async with no_leaks(transport):
        words = [f"w{i}" for i in range(20)]
        assert await _duplex_upper(client, words) == [w.upper() for w in words]
        grpc = _grpc_client(h2c.url, transport)
        assert await _duplex_upper(grpc, words) == [w.upper() for w in words]
    await transport.aclose()


@bounded(5)
async def test_concurrent_calls_share_one_connection(h2c: Served) -> None:
    transport = h2c.transport()
    client = AsyncConnectClient(h2c.url, transport)
    async with no_leaks(transport):
        replies = await asyncio.gather(*(client.unary(ECHO, S(value=str(i))) for i in range(100)))
        assert [r.value for r in replies] == [str(i) for i in range(100)]
        assert transport.open_connections() == 1
    await transport.aclose()


@bounded(5)
async def test_large_messages_both_ways(h2c: Served) -> None:
    transport = h2c.transport()
    size = 8 * 1024 * 1024
    async with no_leaks(transport):
        for protocol in ("connect", "grpc"):
            client = _client(h2c.url, transport, protocol)
            reply = await client.unary(ECHO, S(value="z" * size))
            assert len(reply.value) == size
        # A large streaming upload goes out as the server's windows open.
        parts = [S(value="q" * (1024 * 1024))] * 9
        reply = await client.client_stream(CONCAT, parts)
        assert len(reply.value) == 9 * 1024 * 1024
    await transport.aclose()


@bounded(5)
async def test_slow_reader_does_not_block_other_streams(h2c: Served) -> None:
    window = 256 * 1024
    transport = h2c.transport(read_buffer_bytes=window)
    client = AsyncConnectClient(h2c.url, transport)
    async with no_leaks(transport):
        output = await client.call_server_stream(BIG, S())
        async with output:
            first = await output.__aiter__().__anext__()
            assert len(first.value) == CHUNK
            # The stream now stalls: the server fills its window and waits for us.
            await asyncio.sleep(0.2)
            buffered = sum(s.body.size for c in transport._all for s in c.streams.values())
            assert buffered <= window
            # Other calls on the same connection go through meanwhile.
            started = time.monotonic()
            replies = await asyncio.gather(*(client.unary(ECHO, S(value="o")) for _ in range(20)))
            assert all(r.value == "o" for r in replies)
            assert time.monotonic() - started < 1.0
            assert transport.open_connections() == 1
            # Reading on drains the stalled stream to its end.
            count = 1 + sum([1 async for _ in output])
            assert count == 64
    await transport.aclose()


@bounded(5)
async def test_closing_a_stream_early_frees_its_slot(h2c: Served) -> None:
    transport = h2c.transport()
    client = AsyncConnectClient(h2c.url, transport)
    async with no_leaks(transport):
        output = await client.call_server_stream(BIG, S())
        async with output:
            async for _ in output:
                break
        assert transport.open_streams() == 0
        assert await client.unary(ECHO, S(value="after")) == S(value="after")
        assert transport.open_connections() == 1
    await transport.aclose()


@bounded(5)
async def test_idle_connections_close(h2c: Served) -> None:
    transport = h2c.transport(idle_timeout=0.1)
    client = AsyncConnectClient(h2c.url, transport)
    assert await client.unary(ECHO, S(value="x")) == S(value="x")
    assert transport.open_connections() == 1
    await asyncio.sleep(0.4)
    assert transport.open_connections() == 0
    assert await client.unary(ECHO, S(value="y")) == S(value="y")  # a new connection
    await transport.aclose()


# --- TLS without h2 --------------------------------------------------------------------------


@bounded(5)
async def test_tls_server_without_h2_fails_clearly() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    server_context.set_alpn_protocols(["http/1.1"])

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read(1)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    transport = HTTP2Transport(ssl_context=client_context)
    try:
        with pytest.raises(ConnectError) as info:
            await AsyncConnectClient(f"https://127.0.0.1:{port}", transport).unary(ECHO, S())
        assert info.value.code is Code.UNAVAILABLE
        assert "HTTP1Transport" in info.value.message
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()


# --- against a misbehaving server --------------------------------------------------------------


def _envelope(flags: int, payload: bytes) -> bytes:
    return struct.pack(">BI", flags, len(payload)) + payload


STREAM_HEADERS = [("content-type", "application/connect+proto")]


@bounded(5)
async def test_goaway_finishes_older_streams_and_retries_newer_ones() -> None:
    held: list[ServerStream] = []

    def on_end(conn: ServerConn, stream: ServerStream) -> None:
        if conn is not server.conns[0]:
            conn.echo(stream)
            return
        held.append(stream)
        if len(held) == 2:  # both calls arrived: only the first will be processed here
            conn.goaway(held[0].id)
            conn.echo(held[0])

    async with H2Server(on_end=on_end) as server:
        transport = HTTP2Transport()
        client = AsyncConnectClient(server.url, transport)
        async with no_leaks(transport):
            first = asyncio.ensure_future(client.unary(ECHO, S(value="first")))
            await server.until(lambda: len(server.requests) == 1)
            second = asyncio.ensure_future(client.unary(ECHO, S(value="second")))
            assert (await first).value == "first"
            assert (await second).value == "second"  # retried on a new connection
        assert len(server.conns) == 2
        assert [r.headers[":path"] for r in server.requests] == [ECHO.procedure] * 3
        # The old connection is closed once its last stream is done.
        await asyncio.wait_for(server.conns[0].closed, 2)
        await transport.aclose()


@bounded(5)
async def test_goaway_fails_newer_streaming_calls_as_retryable() -> None:
    held: list[ServerStream] = []

    def on_end(conn: ServerConn, stream: ServerStream) -> None:
        held.append(stream)
        if len(held) == 2:
            conn.goaway(held[0].id)
            conn.echo(held[0])

    async with H2Server(on_end=on_end) as server:
        transport = HTTP2Transport()
        client = AsyncConnectClient(server.url, transport)
        async with no_leaks(transport):
            first = asyncio.ensure_future(client.unary(ECHO, S(value="first")))
            await server.until(lambda: len(server.requests) == 1)
            out = await client.call_client_stream(CONCAT, [S(value="a"), S(value="b")])
            error = out.error()
            assert error is not None
            assert error.code is Code.UNAVAILABLE
            assert "safe to retry" in error.message
            assert (await first).value == "first"
        assert len(server.conns) == 1
        await transport.aclose()


@pytest.mark.parametrize(
    ("rst", "code"),
    [
        (E.CANCEL, Code.CANCELED),
        (E.REFUSED_STREAM, Code.UNAVAILABLE),
        (E.ENHANCE_YOUR_CALM, Code.RESOURCE_EXHAUSTED),
        (E.INADEQUATE_SECURITY, Code.PERMISSION_DENIED),
        (E.INTERNAL_ERROR, Code.INTERNAL),
        (E.PROTOCOL_ERROR, Code.INTERNAL),
        (E.NO_ERROR, Code.INTERNAL),
    ],
)
@bounded(5)
async def test_rst_stream_maps_to_a_code(rst: int, code: Code) -> None:
    def on_request(conn: ServerConn, stream: ServerStream) -> None:
        conn.reset(stream.id, rst)

    async with H2Server(on_request=on_request, on_end=None) as server:
        transport = HTTP2Transport()
        client = AsyncConnectClient(server.url, transport)
        async with no_leaks(transport):
            out = await client.call_unary(ECHO, S(value="x"))
            error = out.error()
            assert error is not None
            assert error.code is code
            # A refused stream was never processed: it is tried once more.
            assert len(server.requests) == (2 if rst == E.REFUSED_STREAM else 1)
        await transport.aclose()


@bounded(5)
async def test_a_reset_at_the_deadline_is_deadline_exceeded() -> None:
    """gRPC servers reset a stream whose deadline passed (grpc-go: CANCEL); when that reset
    is read before the client's own timer runs, the call still failed by its deadline."""
    loop = asyncio.get_running_loop()

    def on_request(conn: ServerConn, stream: ServerStream) -> None:
        def reset_then_stall() -> None:
            conn.reset(stream.id, E.CANCEL)  # just before the deadline...
            time.sleep(0.1)  # ...and read after it, with the client's timer due as well

        loop.call_later(0.15, reset_then_stall)

    async with H2Server(on_request=on_request, on_end=None) as server:
        transport = HTTP2Transport()
        client = _grpc_client(server.url, transport)
        async with no_leaks(transport):
            out = await client.call_unary(ECHO, S(value="x"), timeout_seconds=0.2)
            error = out.error()
            assert error is not None
            assert error.code is Code.DEADLINE_EXCEEDED
        await transport.aclose()


@bounded(5)
async def test_reset_after_headers_fails_the_reader() -> None:
    def on_end(conn: ServerConn, stream: ServerStream) -> None:
        conn.respond(
            stream.id, headers=STREAM_HEADERS, body=_envelope(0, unary_body("a")), end=False
        )
        conn.reset(stream.id, E.ENHANCE_YOUR_CALM)

    async with H2Server(on_end=on_end) as server:
        transport = HTTP2Transport()
        client = AsyncConnectClient(server.url, transport)
        async with no_leaks(transport):
            output = await client.call_server_stream(SPLIT, S(value="ab"))
            async with output:
                got = [message.value async for message in output]
            assert got == ["a"]
            error = output.error()
            assert error is not None
            assert error.code is Code.RESOURCE_EXHAUSTED
        await transport.aclose()


@bounded(5)
async def test_flow_control_stall_hits_the_deadline_and_resets() -> None:
    stalled: list[ServerConn] = []

    def on_request(conn: ServerConn, stream: ServerStream) -> None:
        stalled.append(conn)
        conn.pause_reading()  # nothing read, nothing acknowledged: the client's windows close

    async with H2Server(on_request=on_request, on_end=None, ack_data=False) as server:
        transport = HTTP2Transport()
        client = AsyncConnectClient(server.url, transport)
        async with no_leaks(transport):
            started = time.monotonic()
            out = await client.call_unary(
                ECHO, S(value="s" * (2 * 1024 * 1024)), timeout_seconds=0.5
            )
            elapsed = time.monotonic() - started
            error = out.error()
            assert error is not None
            assert error.code is Code.DEADLINE_EXCEEDED
            assert 0.45 <= elapsed < 1.0
            assert transport.open_streams() == 0
        stalled[0].resume_reading()
        await server.until(lambda: any(r.reset == E.CANCEL for r in server.resets))
        await transport.aclose()


@bounded(5)
async def test_unanswered_pings_fail_the_connection() -> None:
    def on_end(conn: ServerConn, stream: ServerStream) -> None:
        conn.respond(stream.id, headers=STREAM_HEADERS, end=False)  # a stream that idles
        conn.pause_reading()  # and PINGs go unanswered from now on

    async with H2Server(on_end=on_end) as server:
        transport = HTTP2Transport(keepalive_interval=0.1, keepalive_timeout=0.2)
        client = AsyncConnectClient(server.url, transport)
        async with no_leaks(transport):
            started = time.monotonic()
            output = await client.call_server_stream(SPLIT, S(value="x"))
            async with output:
                async for _ in output:
                    pass
            error = output.error()
            assert error is not None
            assert error.code is Code.UNAVAILABLE
            assert "keepalive_timeout" in error.message
            assert time.monotonic() - started < 1.0
            assert transport.open_connections() == 0
        await transport.aclose()


@bounded(5)
async def test_pings_answered_keep_the_connection() -> None:
    def on_end(conn: ServerConn, stream: ServerStream) -> None:
        conn.respond(stream.id, headers=STREAM_HEADERS, end=False)
        loop = asyncio.get_running_loop()
        body = _envelope(0, unary_body("late")) + _envelope(2, b"{}")
        loop.call_later(0.5, functools.partial(conn.send_data, stream.id, body, end=True))

    async with H2Server(on_end=on_end) as server:
        transport = HTTP2Transport(keepalive_interval=0.05, keepalive_timeout=0.2)
        client = AsyncConnectClient(server.url, transport)
        async with no_leaks(transport):
            got = [m.value async for m in client.server_stream(SPLIT, S(value="x"))]
            assert got == ["late"]
        assert server.conns[0].pings >= 3
        await transport.aclose()


@bounded(5)
async def test_socket_closed_mid_call() -> None:
    def on_end(conn: ServerConn, stream: ServerStream) -> None:
        conn.respond(
            stream.id, headers=STREAM_HEADERS, body=_envelope(0, unary_body("a")), end=False
        )
        conn.abort()

    async with H2Server(on_end=on_end) as server:
        transport = HTTP2Transport()
        client = AsyncConnectClient(server.url, transport)
        async with no_leaks(transport):
            output = await client.call_server_stream(SPLIT, S(value="ab"))
            async with output:
                got = [m.value async for m in output]
            assert got == ["a"]
            error = output.error()
            assert error is not None
            assert error.code is Code.UNAVAILABLE
            assert transport.open_connections() == 0
        await transport.aclose()


@bounded(5)
async def test_closing_a_server_stream_early_sends_rst_stream() -> None:
    def on_end(conn: ServerConn, stream: ServerStream) -> None:
        body = b"".join(_envelope(0, unary_body(str(i))) for i in range(3))
        conn.respond(stream.id, headers=STREAM_HEADERS, body=body, end=False)

    async with H2Server(on_end=on_end) as server:
        transport = HTTP2Transport()
        client = AsyncConnectClient(server.url, transport)
        async with no_leaks(transport):
            output = await client.call_server_stream(SPLIT, S(value="x"))
            async with output:
                async for message in output:
                    assert message.value == "0"
                    break
            assert transport.open_streams() == 0
            await server.until(lambda: [r.reset for r in server.resets] == [E.CANCEL])
        await transport.aclose()


@bounded(5)
async def test_request_stream_error_resets_and_surfaces_as_is() -> None:
    async with H2Server(on_end=None) as server:
        transport = HTTP2Transport()
        client = AsyncConnectClient(server.url, transport)

        async def requests() -> AsyncIterator[S]:
            yield S(value="one")
            await asyncio.sleep(0.05)
            raise ConnectError(Code.ABORTED, "the caller gave up")

        async with no_leaks(transport):
            out = await client.call_client_stream(CONCAT, requests())
            error = out.error()
            assert error is not None
            assert (error.code, error.message) == (Code.ABORTED, "the caller gave up")
            await server.until(lambda: [r.reset for r in server.resets] == [E.CANCEL])
        await transport.aclose()


@bounded(5)
async def test_server_answering_first_stops_the_upload_without_error() -> None:
    def on_request(conn: ServerConn, stream: ServerStream) -> None:
        body = _envelope(0, unary_body("early")) + _envelope(2, b"{}")
        conn.respond(stream.id, headers=STREAM_HEADERS, body=body)

    async with H2Server(on_request=on_request, on_end=None) as server:
        transport = HTTP2Transport()
        client = AsyncConnectClient(server.url, transport)

        async def endless() -> AsyncIterator[S]:
            while True:
                yield S(value="more")
                await asyncio.sleep(0.01)

        async with no_leaks(transport):
            assert await client.client_stream(CONCAT, endless()) == S(value="early")
            await server.until(lambda: [r.reset for r in server.resets] == [E.NO_ERROR])
        await transport.aclose()


@bounded(5)
async def test_grpc_trailers_and_trailers_only() -> None:
    def on_end(conn: ServerConn, stream: ServerStream) -> None:
        grpc = [("content-type", "application/grpc+proto")]
        if stream.body[5:] == unary_body("ok"):
            conn.respond(
                stream.id,
                headers=grpc,
                body=_envelope(0, unary_body("fine")),
                trailers=[("grpc-status", "0"), ("x-trailer", "t")],
            )
        else:  # trailers-only: the status in the one HEADERS frame
            conn.respond(
                stream.id, headers=[*grpc, ("grpc-status", "5"), ("grpc-message", "not%20here")]
            )

    async with H2Server(on_end=on_end) as server:
        transport = HTTP2Transport()
        client = _grpc_client(server.url, transport)
        async with no_leaks(transport):
            out = await client.call_unary(ECHO, S(value="ok"))
            assert out.message() == S(value="fine")
            assert out.response_trailers()["x-trailer"] == "t"
            out = await client.call_unary(ECHO, S(value="missing"))
            error = out.error()
            assert error is not None
            assert (error.code, error.message) == (Code.NOT_FOUND, "not here")
        assert server.requests[0].headers["te"] == "trailers"
        await transport.aclose()


@bounded(5)
async def test_stream_slots_and_connection_bound() -> None:
    active = 0
    peak = 0

    def on_end(conn: ServerConn, stream: ServerStream) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)

        def answer() -> None:
            nonlocal active
            active -= 1
            conn.echo(stream)

        asyncio.get_running_loop().call_later(0.05, answer)

    settings: dict[h2.settings.SettingCodes | int, int] = {
        h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2
    }
    async with H2Server(on_end=on_end, settings=settings) as server:
        transport = HTTP2Transport(max_connections_per_origin=2)
        client = AsyncConnectClient(server.url, transport)
        async with no_leaks(transport):
            # One call first, so that each connection knows the limit before it is busy.
            assert await client.unary(ECHO, S(value="warm")) == S(value="warm")
            await asyncio.gather(
                client.unary(ECHO, S(value="a")),
                client.unary(ECHO, S(value="b")),
                client.unary(ECHO, S(value="c")),
            )
            replies = await asyncio.gather(
                *(client.unary(ECHO, S(value=str(i))) for i in range(12))
            )
            assert [r.value for r in replies] == [str(i) for i in range(12)]
        assert len(server.conns) == 2
        assert peak <= 4
        await transport.aclose()


@bounded(5)
async def test_oversized_response_headers_fail_with_internal() -> None:
    def on_end(conn: ServerConn, stream: ServerStream) -> None:
        conn.respond(
            stream.id,
            headers=[("content-type", "application/proto"), ("x-big", "v" * 8192)],
            body=b"",
        )

    async with H2Server(on_end=on_end) as server:
        transport = HTTP2Transport(max_header_bytes=1024)
        client = AsyncConnectClient(server.url, transport)
        async with no_leaks(transport):
            # The first exchange lets the server acknowledge our SETTINGS.
            out = await client.call_unary(ECHO, S(value="x"))
            error = out.error()
            assert error is not None
            assert error.code is Code.INTERNAL
            assert "max_header_bytes" in error.message
        await transport.aclose()


@bounded(5)
async def test_connect_failure_is_unavailable() -> None:
    sock = listening_socket()
    port = sock.getsockname()[1]
    sock.close()
    transport = HTTP2Transport()
    client = AsyncConnectClient(f"http://127.0.0.1:{port}", transport)
    async with no_leaks(transport):
        outs = await asyncio.gather(*(client.call_unary(ECHO, S()) for _ in range(5)))
        for out in outs:
            error = out.error()
            assert error is not None
            assert error.code is Code.UNAVAILABLE
    await transport.aclose()


@bounded(5)
async def test_a_call_cancelled_as_its_connection_completes_is_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """asyncio.wait_for (before Python 3.12) drops a cancellation that arrives as what it
    waits for completes: the call went on as if nothing had happened."""
    async with H2Server() as server:
        transport = HTTP2Transport()
        client = AsyncConnectClient(server.url, transport)
        loop = asyncio.get_running_loop()
        connect = loop.create_connection
        calls: list[asyncio.Future[Any]] = []

        async def connect_then_cancel(*args: Any, **kwargs: Any) -> Any:
            made = await connect(*args, **kwargs)
            calls[0].cancel()  # the caller gives up just as the connection is made
            return made

        monkeypatch.setattr(loop, "create_connection", connect_then_cancel)
        async with no_leaks(transport):
            calls.append(asyncio.ensure_future(client.call_unary(ECHO, S(value="x"))))
            with pytest.raises(asyncio.CancelledError):
                await calls[0]
            monkeypatch.undo()
            assert await client.unary(ECHO, S(value="y")) == S(value="y")
        assert [r.headers[":path"] for r in server.requests] == [ECHO.procedure]
        await transport.aclose()


@bounded(5)
async def test_connect_timeout_and_deadline_while_connecting() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read()  # accepts TCP, never answers the TLS handshake
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    transport = HTTP2Transport(connect_timeout=0.2)
    try:
        async with no_leaks(transport):
            started = time.monotonic()
            out = await AsyncConnectClient(url, transport).call_unary(ECHO, S())
            error = out.error()
            assert error is not None
            assert error.code is Code.UNAVAILABLE
            assert "connect_timeout" in error.message
            assert time.monotonic() - started < 1.0
            # A deadline shorter than connect_timeout wins.
            transport2 = HTTP2Transport(connect_timeout=5)
            out = await AsyncConnectClient(url, transport2).call_unary(
                ECHO, S(), timeout_seconds=0.1
            )
            error = out.error()
            assert error is not None
            assert error.code is Code.DEADLINE_EXCEEDED
            await transport2.aclose()
    finally:
        await transport.aclose()
        server.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 1)


@bounded(5)
async def test_aclose_fails_calls_in_progress() -> None:
    async with H2Server(on_end=None) as server:
        transport = HTTP2Transport()
        client = AsyncConnectClient(server.url, transport)
        async with no_leaks(transport):
            call = asyncio.ensure_future(client.call_unary(ECHO, S(value="x")))
            await server.until(lambda: len(server.requests) == 1)
            await transport.aclose()
            error = (await call).error()
            assert error is not None
            assert error.code is Code.UNAVAILABLE
            assert transport.open_connections() == 0


@bounded(5)
async def test_transport_level_exchange() -> None:
    """The transport's own contract: status, headers, body chunks, trailers, close."""

    def on_end(conn: ServerConn, stream: ServerStream) -> None:
        conn.respond(
            stream.id,
            headers=[("content-type", "text/plain"), ("x-a", "1")],
            body=b"hello",
            trailers=[("x-t", "2")],
        )

    async with H2Server(on_end=on_end) as server:
        transport = HTTP2Transport()
        async with no_leaks(transport):
            request = HTTPRequest(
                "POST",
                server.url + "/p?q=1",
                CIMultiDict({"X-Mixed-Case": "v", "Host": "example.com:1"}),
                b"body",
                1.0,
            )
            response = await transport.send(request)
            assert response.status == 200
            assert response.headers["x-a"] == "1"
            assert await response.read() == b"hello"
            assert await response.read() == b""
            assert response.trailers() == CIMultiDict({"x-t": "2"})
            await response.close(abort=False)
            seen = server.requests[0]
            assert seen.headers[":path"] == "/p?q=1"
            assert seen.headers[":authority"] == "example.com:1"
            assert seen.headers["x-mixed-case"] == "v"
            assert seen.headers["content-length"] == "4"
            assert "host" not in seen.headers
            assert bytes(seen.body) == b"body"
            for bad in ({"connection": "close"}, {"te": "gzip"}, {"x-a": "b\r\nc"}):
                with pytest.raises(ValueError, match="header"):
                    await transport.send(
                        HTTPRequest("POST", server.url, CIMultiDict(bad), b"", None)
                    )
        await transport.aclose()
