"""The server's time and memory bounds, driven through raw ASGI events.

Each test plays a client that keeps no deadline of its own, so only the server's own
enforcement can make it pass: the deadline from ``connect-timeout-ms``, the read-idle
timeout for stalled uploads, the bound on sends that never complete, and buffering that
costs about the bytes buffered however the body is split.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import struct
import time
import tracemalloc
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import pytest

from connectrpc.method import MethodInfo, StreamType
from connectrpc.server import (
    ConnectASGIApplication,
    RequestContext,
    ServerOptions,
    server_stream_handler,
    unary_handler,
)

from ._service import EchoService, S, make_app

UNARY = {"content-type": "application/proto", "connect-protocol-version": "1"}
STREAM = {"content-type": "application/connect+proto", "connect-protocol-version": "1"}
ECHO = "/test.v1.EchoService/Echo"
SLOW = "/test.v1.EchoService/Slow"
FAIL = "/test.v1.EchoService/Fail"
CONCAT = "/test.v1.EchoService/Concat"
SPLIT = "/test.v1.EchoService/Split"


def env(flags: int, data: bytes) -> bytes:
    return struct.pack(">BI", flags, len(data)) + data


def scope(path: str, headers: dict[str, str], http_version: str = "1.1") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": http_version,
        "method": "POST",
        "scheme": "http",
        "path": path,
        "query_string": b"",
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
    }


class Exchange:
    """One request's ASGI conversation: body pieces to hand out, then (optionally) a stall."""

    def __init__(self, pieces: list[bytes], *, stall: bool) -> None:
        self._pieces = collections.deque(pieces)
        self._stall = stall
        self.sent: list[MutableMapping[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        if self._pieces:
            body = self._pieces.popleft()
            more = bool(self._pieces) or self._stall
            return {"type": "http.request", "body": body, "more_body": more}
        # A stalled upload, or (once the body is complete) a client that stays connected.
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(self, msg: MutableMapping[str, Any]) -> None:
        self.sent.append(msg)

    def status(self) -> int:
        assert self.sent[0]["type"] == "http.response.start"
        return int(self.sent[0]["status"])

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])

    def unary_code(self) -> str:
        return str(json.loads(self.body())["code"])

    def end_stream(self) -> dict[str, Any]:
        body = self.body()
        pos, flags, last = 0, 0, b""
        while pos < len(body):
            flags, length = struct.unpack(">BI", body[pos : pos + 5])
            last = body[pos + 5 : pos + 5 + length]
            pos += 5 + length
        assert flags == 2, "the response must end with an end-of-stream message"
        result: dict[str, Any] = json.loads(last)
        return result


async def run(
    app: ConnectASGIApplication,
    path: str,
    headers: dict[str, str],
    pieces: list[bytes],
    *,
    stall: bool = False,
    limit: float = 3.0,
) -> tuple[Exchange, float]:
    ex = Exchange(pieces, stall=stall)
    start = time.monotonic()
    await asyncio.wait_for(app(scope(path, headers), ex.receive, ex.send), limit)
    return ex, time.monotonic() - start


# --- deadlines, enforced by the server alone -------------------------------------------------


async def test_server_enforces_connect_timeout_ms_on_unary() -> None:
    service = EchoService()
    headers = {**UNARY, "connect-timeout-ms": "200"}
    ex, took = await run(make_app(service), SLOW, headers, [S(value="10").SerializeToString()])
    assert ex.status() == 504
    assert ex.unary_code() == "deadline_exceeded"
    assert 0.15 < took < 1.0
    assert service.cancelled.is_set(), "the handler must be cancelled at the deadline"


async def test_server_enforces_connect_timeout_ms_on_streams() -> None:
    async def slow_stream(request: S, ctx: RequestContext) -> AsyncIterator[S]:
        yield S(value="first")
        await asyncio.sleep(10)
        yield S(value="never")

    method: MethodInfo[S, S] = MethodInfo(
        "test.v1.EchoService", "Drip", S, S, StreamType.SERVER_STREAM
    )
    app = ConnectASGIApplication([server_stream_handler(method, slow_stream)])
    headers = {**STREAM, "connect-timeout-ms": "200"}
    ex, took = await run(
        app, "/test.v1.EchoService/Drip", headers, [env(0, S().SerializeToString())]
    )
    assert ex.end_stream()["error"]["code"] == "deadline_exceeded"
    assert 0.15 < took < 1.0


async def test_deadline_answer_is_not_held_back_by_a_stalled_body() -> None:
    """Regression: the answer waited up to 5 s draining an upload that never finished."""
    headers = {**UNARY, "connect-timeout-ms": "300"}
    ex, took = await run(make_app(EchoService()), ECHO, headers, [b"\x0a"], stall=True)
    assert ex.unary_code() == "deadline_exceeded"
    assert took < 1.0
    headers = {**STREAM, "connect-timeout-ms": "300"}
    piece = env(0, S(value="a").SerializeToString())
    ex, took = await run(make_app(EchoService()), CONCAT, headers, [piece], stall=True)
    assert ex.end_stream()["error"]["code"] == "deadline_exceeded"
    assert took < 1.0


@pytest.mark.parametrize("value", [b"\xb2", b"1\xb9", b"\xb3", b"+5", b" 5", b"0x10", b"1_000"])
async def test_non_ascii_digit_timeouts_are_invalid_argument(value: bytes) -> None:
    """Regression: the byte 0xB2 is "²" in latin-1, which passed ``str.isdigit`` and made
    ``int()`` raise (a bare 500)."""
    sc = scope(ECHO, UNARY)
    sc["headers"].append((b"connect-timeout-ms", value))
    ex = Exchange([b""], stall=False)
    await asyncio.wait_for(make_app(EchoService())(sc, ex.receive, ex.send), 2)
    assert ex.status() == 400
    assert ex.unary_code() == "invalid_argument"


# --- stalled uploads without a deadline -----------------------------------------------------


async def test_read_idle_timeout_fails_a_stalled_unary_upload() -> None:
    app = make_app(EchoService(), ServerOptions(read_idle_timeout=0.2))
    ex, took = await run(app, ECHO, UNARY, [b"\x0a"], stall=True)
    assert ex.status() == 504
    assert ex.unary_code() == "deadline_exceeded"
    assert "read_idle_timeout" in json.loads(ex.body())["message"]
    assert took < 1.0


async def test_read_idle_timeout_fails_a_stalled_stream_upload() -> None:
    app = make_app(EchoService(), ServerOptions(read_idle_timeout=0.2))
    piece = env(0, S(value="a").SerializeToString())
    ex, took = await run(app, CONCAT, STREAM, [piece], stall=True)
    error = ex.end_stream()["error"]
    assert error["code"] == "deadline_exceeded"
    assert "read_idle_timeout" in error["message"]
    assert took < 1.0


async def test_read_idle_timeout_does_not_cut_a_slow_handler() -> None:
    """Once the request is complete, the handler may take as long as it likes."""
    app = make_app(EchoService(), ServerOptions(read_idle_timeout=0.1))
    ex, _ = await run(app, SLOW, UNARY, [S(value="0.3").SerializeToString()])
    assert ex.status() == 200
    assert S.FromString(ex.body()).value == "late"


# --- sends that never complete ---------------------------------------------------------------


class BlackHole:
    """An ASGI send that never completes after the first ``accept`` messages."""

    def __init__(self, accept: int) -> None:
        self.accept = accept
        self.sent: list[MutableMapping[str, Any]] = []

    async def send(self, msg: MutableMapping[str, Any]) -> None:
        if len(self.sent) >= self.accept:
            await asyncio.Event().wait()
        self.sent.append(msg)


@pytest.mark.parametrize(
    ("path", "headers", "body", "accept"),
    [
        (FAIL, UNARY, S(value="no").SerializeToString(), 0),  # shielded error response
        (FAIL, UNARY, S(value="no").SerializeToString(), 1),  # ... stuck on its body
        (ECHO, UNARY, S(value="hi").SerializeToString(), 0),  # success response
        (SPLIT, STREAM, env(0, S(value="abc").SerializeToString()), 1),  # stream body
        ("/nowhere", UNARY, b"", 0),  # 404 before any handler
    ],
)
async def test_sends_that_never_complete_do_not_leak_tasks(
    path: str, headers: dict[str, str], body: bytes, accept: int
) -> None:
    """Regression: after hypercorn's HTTP/2 GOAWAY, a gone client left handler tasks waiting
    on ``send`` forever (the shielded error write outlived the request's own task)."""
    app = make_app(EchoService(), ServerOptions(send_idle_timeout=0.2))
    hole = BlackHole(accept)
    ex = Exchange([body], stall=False)
    before = asyncio.all_tasks()
    start = time.monotonic()
    await asyncio.wait_for(app(scope(path, headers), ex.receive, hole.send), 2)
    assert time.monotonic() - start < 1.0
    await asyncio.sleep(0.05)
    assert asyncio.all_tasks() - before == set(), "a task outlived its request"


# --- headers a handler cannot send ------------------------------------------------------------


def _bad_header_app() -> ConnectASGIApplication:
    async def unary(request: S, ctx: RequestContext) -> S:
        ctx.response_headers["x-price"] = "5 €"
        return S(value="ok")

    async def stream(request: S, ctx: RequestContext) -> AsyncIterator[S]:
        ctx.response_headers["x-price"] = "5 €"
        yield S(value="ok")

    u: MethodInfo[S, S] = MethodInfo("t.S", "U", S, S, StreamType.UNARY)
    s: MethodInfo[S, S] = MethodInfo("t.S", "S", S, S, StreamType.SERVER_STREAM)
    return ConnectASGIApplication([unary_handler(u, unary), server_stream_handler(s, stream)])


async def test_non_latin1_header_on_unary_is_a_logged_internal_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="connectrpc.server")
    ex, _ = await run(_bad_header_app(), "/t.S/U", UNARY, [S().SerializeToString()])
    assert ex.status() == 500
    assert ex.unary_code() == "internal"
    assert "x-price" in caplog.text


async def test_non_latin1_header_on_stream_keeps_asgi_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Regression: the stream was marked started before its head was built, so the error
    path sent a body without ``http.response.start`` (an ASGI protocol error)."""
    caplog.set_level(logging.ERROR, logger="connectrpc.server")
    ex, _ = await run(_bad_header_app(), "/t.S/S", STREAM, [env(0, S().SerializeToString())])
    assert ex.sent[0]["type"] == "http.response.start"
    assert all(m["type"] == "http.response.body" for m in ex.sent[1:])
    assert (b"x-price", b"5 \xe2\x82\xac") not in ex.sent[0]["headers"]
    assert ex.end_stream()["error"]["code"] == "internal"
    assert "x-price" in caplog.text


# --- memory: buffering costs about the bytes buffered ---------------------------------------


@pytest.mark.parametrize(
    ("path", "headers", "framed"), [(ECHO, UNARY, False), (CONCAT, STREAM, True)]
)
async def test_one_byte_chunks_cost_about_their_size(
    path: str, headers: dict[str, str], framed: bool
) -> None:
    """Regression: each one-byte chunk was kept as its own object (about 40 bytes), so a
    4 MiB request sent a byte at a time held over 150 MB."""
    message = S(value="x" * (256 * 1024)).SerializeToString()
    data = env(0, message) if framed else message
    ex = Exchange([data[i : i + 1] for i in range(len(data))], stall=False)
    buffered: list[int] = []
    receive = ex.receive

    async def measured_receive() -> dict[str, Any]:
        if len(ex._pieces) == 1:  # all but the last byte are buffered by now
            buffered.append(tracemalloc.get_traced_memory()[0])
        return await receive()

    tracemalloc.start()
    try:
        await asyncio.wait_for(
            make_app(EchoService())(scope(path, headers), measured_receive, ex.send), 60
        )
    finally:
        tracemalloc.stop()
    assert ex.status() == 200
    assert buffered[0] < 2 * len(data), f"{buffered[0]} bytes held for {len(data)} bytes"
