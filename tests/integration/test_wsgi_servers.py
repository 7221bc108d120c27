"""ConnectWSGIApplication under real WSGI servers, called by the async client over sockets.

Each server runs as a child process on 127.0.0.1 (a free port): gunicorn with ``sync`` and
with ``gthread`` workers, and waitress. The client (aiohttp, and ``HTTP1Transport``) makes
the four kinds of call, one that overruns its deadline, and a server stream whose first
message must arrive while the handler is still working: proof that the response is
streamed, not buffered.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from connectrpc.client import AsyncConnectClient, ClientOptions, HTTP1Transport
from connectrpc.errors import Code, ConnectError
from connectrpc.method import MethodInfo, StreamType
from connectrpc.server import ConnectWSGIApplication, RequestContext, sync_server_stream_handler
from tests.api._service import CONCAT, ECHO, SERVICE, SLOW, UPPER, S, make_wsgi_app

REPO = Path(__file__).resolve().parents[2]
DRIP: MethodInfo[S, S] = MethodInfo(SERVICE, "Drip", S, S, StreamType.SERVER_STREAM)
DRIP_PAUSE = 1.0  # seconds between Drip's two messages


def drip(request: S, ctx: RequestContext) -> Iterator[S]:
    yield S(value="first")
    time.sleep(DRIP_PAUSE)
    yield S(value="second")


def create_app() -> ConnectWSGIApplication:
    """The app the servers load (``tests.integration.test_wsgi_servers:create_app()``)."""
    echo = make_wsgi_app()
    return ConnectWSGIApplication([*echo.handlers, sync_server_stream_handler(DRIP, drip)])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(server: str, port: int) -> list[str]:
    target = "tests.integration.test_wsgi_servers:create_app"
    if server == "waitress":
        return [
            sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", "--threads=8",
            "--call", target,
        ]  # fmt: skip
    worker = server.removeprefix("gunicorn-")
    return [
        sys.executable, "-m", "gunicorn", "--worker-class", worker, "--threads", "8",
        "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--no-control-socket",
        f"{target}()",
    ]  # fmt: skip


def _wait_listening(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the server exited with status {proc.returncode}"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise AssertionError("the server did not start listening")


@pytest.fixture(scope="module", params=["gunicorn-sync", "gunicorn-gthread", "waitress"])
def server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        _command(str(request.param), port),
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_listening(proc, port)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(params=["aiohttp", "http1", "grpc-web"])
async def client(
    request: pytest.FixtureRequest, server_url: str
) -> AsyncIterator[AsyncConnectClient]:
    if request.param == "http1":
        c = AsyncConnectClient(server_url, HTTP1Transport())
    else:
        protocol = "grpc-web" if request.param == "grpc-web" else "connect"
        c = AsyncConnectClient(server_url, options=ClientOptions(protocol=protocol))
    async with c:
        yield c


async def _messages(*values: str) -> AsyncIterator[S]:
    for value in values:
        yield S(value=value)


async def test_unary(client: AsyncConnectClient) -> None:
    assert (await client.unary(ECHO, S(value="hi"))).value == "hi"


async def test_client_stream(client: AsyncConnectClient) -> None:
    response = await client.client_stream(CONCAT, _messages("a", "b", "c"))
    assert response.value == "abc"


async def test_half_duplex_bidi(client: AsyncConnectClient) -> None:
    responses = [r.value async for r in client.bidi_stream(UPPER, _messages("x", "y"))]
    assert responses == ["X", "Y"]


async def test_server_stream_is_streamed(client: AsyncConnectClient) -> None:
    begin = time.monotonic()
    arrivals: list[tuple[str, float]] = []
    async for response in client.server_stream(DRIP, S()):
        arrivals.append((response.value, time.monotonic() - begin))
    assert [value for value, _ in arrivals] == ["first", "second"]
    assert arrivals[0][1] < DRIP_PAUSE / 2, "the first message must not wait for the handler"
    assert arrivals[1][1] >= DRIP_PAUSE


async def test_deadline_is_answered_on_time(client: AsyncConnectClient) -> None:
    # The client keeps no deadline of its own: only the server can answer in time. Each
    # protocol reads its own header and ignores the other's.
    timeouts = {"connect-timeout-ms": "300", "grpc-timeout": "300m"}
    begin = time.monotonic()
    with pytest.raises(ConnectError) as caught:
        await client.unary(SLOW, S(value="5"), extra_headers=timeouts)
    took = time.monotonic() - begin
    assert caught.value.code is Code.DEADLINE_EXCEEDED
    assert took < 2.0, took
