"""Our client transports against a raw TCP server on 127.0.0.1 that misbehaves on purpose.

The server is a scripted asyncio socket server, not an RPC server: it keeps no deadlines and
answers exactly the bytes a test gives it, so each test sees only the client's own
behaviour (its deadline, its bounds on what it buffers, its reading of HTTP/1.1).
"""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from connectrpc.client import AsyncConnectClient, HTTP1Transport
from connectrpc.errors import Code

from ..api._service import CONCAT, ECHO, FAIL, SPLIT, S

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


class RawServer:
    """Accepts connections and runs ``script`` on each; remembers the tasks to stop them."""

    def __init__(self, script: Script) -> None:
        self._script = script
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            try:
                await self._script(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self._server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


@pytest.fixture(params=["aiohttp", "http1"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _client(url: str, transport: str) -> AsyncConnectClient:
    if transport == "http1":
        return AsyncConnectClient(url, HTTP1Transport())
    return AsyncConnectClient(url)  # its own aiohttp session, closed by close()


UNARY_OK = S(value="ok").SerializeToString()


def _unary_response(extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/proto\r\n"
        + extra
        + b"content-length: %d\r\n\r\n" % len(UNARY_OK)
        + UNARY_OK
    )


# --- each transport's own deadline ----------------------------------------------------------


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_head(reader)
    await asyncio.sleep(30)  # reads the request, never answers


async def _head_then_stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_head(reader)
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/connect+proto\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    await writer.drain()
    await asyncio.sleep(30)


async def test_deadline_fires_when_the_server_never_answers(transport: str) -> None:
    async with RawServer(_silent) as server:
        client = _client(server.url, transport)
        try:
            start = time.monotonic()
            out = await asyncio.wait_for(client.call_unary(ECHO, S(), timeout_seconds=0.3), 5)
            took = time.monotonic() - start
        finally:
            await client.close()
    err = out.error()
    assert err is not None
    assert err.code is Code.DEADLINE_EXCEEDED
    assert 0.25 < took < 1.5


async def test_deadline_fires_mid_stream(transport: str) -> None:
    async with RawServer(_head_then_stall) as server:
        client = _client(server.url, transport)
        try:
            start = time.monotonic()
            output = await asyncio.wait_for(
                client.call_server_stream(SPLIT, S(), timeout_seconds=0.3), 5
            )
            async with output:
                got = [m async for m in output]
            took = time.monotonic() - start
        finally:
            await client.close()
    assert got == []
    err = output.error()
    assert err is not None
    assert err.code is Code.DEADLINE_EXCEEDED
    assert 0.25 < took < 1.5


# --- interim responses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "interim",
    [
        b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nlink: <a>\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n",
    ],
)
async def test_interim_responses_are_skipped(transport: str, interim: bytes) -> None:
    """Regression: HTTP1Transport took 103 Early Hints for the final response."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(interim)
        await writer.drain()
        writer.write(_unary_response(b"x-final: yes\r\n"))
        await writer.drain()
        await asyncio.sleep(5)

    async with RawServer(script) as server:
        client = _client(server.url, transport)
        try:
            out = await asyncio.wait_for(client.call_unary(ECHO, S()), 5)
        finally:
            await client.close()
    assert out.error() is None
    assert out.message() == S(value="ok")
    assert out.response_headers()["x-final"] == "yes"
    assert "link" not in out.response_headers()


# --- unbounded response heads -----------------------------------------------------------------


async def _endless_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\n")
    for i in range(100_000):  # about 5 MB of headers, unless the client hangs up first
        writer.write(b"x-filler-%d: %s\r\n" % (i, b"a" * 40))
        await writer.drain()


async def _endless_header_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nx-long: ")
    for _ in range(5_000):  # one header value of up to 5 MB
        writer.write(b"a" * 1000)
        await writer.drain()


async def _endless_interims(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_head(reader)
    for _ in range(100_000):
        writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: <a>\r\n\r\n")
        await writer.drain()


@pytest.mark.parametrize("script", [_endless_headers, _endless_header_line, _endless_interims])
async def test_http1_transport_bounds_the_response_head(script: Script) -> None:
    """Regression: a server streaming headers forever grew the client without bound."""
    async with RawServer(script) as server:
        client = AsyncConnectClient(server.url, HTTP1Transport(max_header_bytes=32 * 1024))
        tracemalloc.start()
        try:
            out = await asyncio.wait_for(client.call_unary(ECHO, S()), 5)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            await client.close()
    err = out.error()
    assert err is not None
    assert err.code is Code.INTERNAL
    assert "max_header_bytes" in err.message
    assert peak < 2 * 1024 * 1024


async def test_http1_transport_bounds_the_header_count() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        many = b"".join(b"x-%d: 1\r\n" % i for i in range(40))
        writer.write(_unary_response(many))
        await writer.drain()
        await asyncio.sleep(5)

    async with RawServer(script) as server:
        strict = AsyncConnectClient(server.url, HTTP1Transport(max_headers=32))
        roomy = AsyncConnectClient(server.url, HTTP1Transport(max_headers=64))
        try:
            out = await asyncio.wait_for(strict.call_unary(ECHO, S()), 5)
            ok = await asyncio.wait_for(roomy.call_unary(ECHO, S()), 5)
        finally:
            await strict.close()
            await roomy.close()
    err = out.error()
    assert err is not None
    assert err.code is Code.INTERNAL
    assert "max_headers" in err.message
    assert ok.error() is None


# --- tiny chunks --------------------------------------------------------------------------------


@pytest.mark.parametrize("transport_name", ["aiohttp", "http1"])
async def test_one_byte_body_chunks_cost_about_their_size(transport_name: str) -> None:
    """Regression: with one-byte chunks the client kept an object per byte (an 8 MiB
    message peaked at 752 MB). The server here sends a 256 KiB stream message in one-byte
    HTTP chunks."""
    size = 256 * 1024
    message = S(value="x" * size).SerializeToString()
    frame = b"\x00" + len(message).to_bytes(4, "big") + message
    body = frame + b"\x02\x00\x00\x00\x02{}"

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/connect+proto\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        # One HTTP chunk per byte; flushing every 4 KiB keeps the test fast while the client
        # still sees (and must merge) one body piece per HTTP chunk.
        step = 4096
        for i in range(0, len(body), step):
            writer.write(b"".join(b"1\r\n%c\r\n" % b for b in body[i : i + step]))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    async with RawServer(script) as server:
        client = _client(server.url, transport_name)
        tracemalloc.start()
        try:
            output = await asyncio.wait_for(client.call_server_stream(SPLIT, S()), 10)
            async with output:
                got = [len(m.value) async for m in output]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            await client.close()
    assert output.error() is None
    assert got == [size]
    # The message buffered (aiohttp's buffers and ours), joined, decoded and its value as a
    # str: several copies; an object per byte would be some forty times the message.
    assert peak < 12 * len(message), f"peak {peak} bytes for a {len(message)}-byte message"


# --- what comes with an error -------------------------------------------------------------------


async def test_error_metadata_has_headers_then_trailers(transport: str) -> None:
    """``ConnectError.metadata`` of a server's error holds the response headers, then the
    trailers; for unary calls the trailers come as ``trailer-`` headers, for streams in the
    end-of-stream message."""
    error_body = json.dumps({"code": "aborted", "message": "no"}).encode()
    unary = (
        b"HTTP/1.1 409 Conflict\r\ncontent-type: application/json\r\n"
        b"x-head: h\r\ntrailer-x-tail: t\r\ncontent-length: %d\r\n\r\n"
        % len(error_body)
        + error_body
    )
    end = json.dumps(
        {"error": {"code": "aborted", "message": "no"}, "metadata": {"x-tail": ["t"]}}
    ).encode()
    stream = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/connect+proto\r\nx-head: h\r\n"
        b"content-length: %d\r\n\r\n" % (5 + len(end)) + b"\x02" + len(end).to_bytes(4, "big") + end
    )

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # keep-alive: the client may send both calls on one connection
            head = await _read_head(reader)
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            writer.write(stream if b"Split" in head else unary)
            await writer.drain()

    async with RawServer(script) as server:
        client = _client(server.url, transport)
        try:
            out = await asyncio.wait_for(client.call_unary(FAIL, S()), 5)
            output = await asyncio.wait_for(client.call_server_stream(SPLIT, S()), 5)
            async with output:
                assert [m async for m in output] == []
        finally:
            await client.close()
    for err in (out.error(), output.error()):
        assert err is not None
        assert err.code is Code.ABORTED
        assert err.wire
        assert err.metadata["x-head"] == "h"
        assert err.metadata["x-tail"] == "t"
        keys = [k.lower() for k in err.metadata]
        assert keys.index("x-head") < keys.index("x-tail")
    assert out.response_trailers()["x-tail"] == "t"
    assert output.response_trailers()["x-tail"] == "t"


async def test_aiohttp_session_without_timeout_still_honours_the_deadline() -> None:
    """The deadline must not depend on the session's own timeout settings."""
    no_timeout = aiohttp.ClientTimeout(total=None)
    async with RawServer(_silent) as server, aiohttp.ClientSession(timeout=no_timeout) as session:
        client = AsyncConnectClient(server.url, session)
        start = time.monotonic()
        out = await asyncio.wait_for(client.call_unary(ECHO, S(), timeout_seconds=0.3), 5)
        assert time.monotonic() - start < 1.5
    err = out.error()
    assert err is not None
    assert err.code is Code.DEADLINE_EXCEEDED


# --- the same event, the same outcome on both transports ---------------------------------------


async def test_connection_reset_mid_response_is_unavailable(transport: str) -> None:
    """Both transports report a connection lost mid-body as ``unavailable`` (aiohttp's
    payload error used to surface as ``internal``)."""
    import socket
    import struct

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/connect+proto\r\n"
            b"content-length: 1000\r\n\r\n\x00\x00\x00"
        )
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST, not FIN

    async with RawServer(script) as server:
        client = _client(server.url, transport)
        try:
            output = await asyncio.wait_for(client.call_server_stream(SPLIT, S()), 5)
            async with output:
                assert [m async for m in output] == []
        finally:
            await client.close()
    err = output.error()
    assert err is not None
    assert err.code is Code.UNAVAILABLE, err


class BoomError(Exception):
    pass


async def test_a_failing_request_iterator_raises_its_own_error(transport: str) -> None:
    """A bug in the caller's request stream is raised as itself on both transports, not
    disguised as a network failure."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        await asyncio.sleep(5)

    async def requests() -> AsyncIterator[S]:
        yield S(value="a")
        await asyncio.sleep(0.05)
        raise BoomError("from the caller")

    async with RawServer(script) as server:
        client = _client(server.url, transport)
        try:
            with pytest.raises(BoomError, match="from the caller"):
                await asyncio.wait_for(client.call_client_stream(CONCAT, requests()), 5)
        finally:
            await client.close()
