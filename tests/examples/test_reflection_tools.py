"""grpcurl and ``buf curl`` against Eliza, health and reflection served by one app, with no
``.proto`` files: everything they know about the services comes from reflection.

The server is hypercorn over h2c, in this process, so a test can change a health status
between two tool calls. grpcurl and buf are Go programs that ``tools/setup.sh`` installs.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from eliza.v1 import eliza_connect
from eliza_engine import Eliza
from eliza_server import ElizaService, bind_socket, make_config, url_of
from hypercorn.asyncio import serve

from connectrpc.health import HealthChecker, ServingStatus, health_handlers
from connectrpc.hypercorn import patch_hypercorn_h2
from connectrpc.reflection import reflection_handlers
from connectrpc.server import ConnectASGIApplication

from ..go_tools import find_go_tool
from .test_buf import find_buf

ELIZA = "connectrpc.eliza.v1.ElizaService"
SERVICES = [
    ELIZA,
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
]
SEED = 1966
TOOL_TIMEOUT = 60.0  # seconds for one tool run; a hung tool fails the test instead


def find_grpcurl() -> str:
    return find_go_tool("grpcurl")


def build_app(checker: HealthChecker) -> ConnectASGIApplication:
    """Eliza, health and reflection in one application."""
    eliza = eliza_connect.ElizaServiceASGIApplication(ElizaService(SEED))
    services = [*eliza.handlers, *health_handlers(checker)]
    return ConnectASGIApplication([*services, *reflection_handlers(services)])


@dataclass(frozen=True)
class Server:
    url: str
    address: str  # host:port, as grpcurl wants it
    checker: HealthChecker


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    patch_hypercorn_h2()
    checker = HealthChecker()
    checker.set_status(ELIZA, ServingStatus.SERVING)
    sock = bind_socket("127.0.0.1", 0)
    url = url_of(sock, tls=False)
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(build_app(checker), make_config(sock), shutdown_trigger=stop.wait, mode="asgi")
    )
    try:
        yield Server(url, url.removeprefix("http://"), checker)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a tool in a thread (the server runs on this loop), killed after TOOL_TIMEOUT."""
    return await asyncio.to_thread(
        subprocess.run, args, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False
    )


async def grpcurl(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return await run(find_grpcurl(), "-plaintext", "-max-time", "30", *args)


async def health(server: Server, service: str) -> object:
    data = json.dumps({"service": service})
    result = await grpcurl(server, "-d", data, server.address, "grpc.health.v1.Health/Check")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout).get("status")


async def test_grpcurl_lists_the_services(server: Server) -> None:
    result = await grpcurl(server, server.address, "list")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == SERVICES
    methods = await grpcurl(server, server.address, "list", "grpc.health.v1.Health")
    assert methods.returncode == 0, methods.stderr
    assert methods.stdout.split() == [
        "grpc.health.v1.Health.Check",
        "grpc.health.v1.Health.List",
        "grpc.health.v1.Health.Watch",
    ]


async def test_grpcurl_calls_eliza_without_protos(server: Server) -> None:
    data = '{"sentence":"hi"}'
    result = await grpcurl(server, "-d", data, server.address, f"{ELIZA}/Say")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"sentence": Eliza(SEED).reply("hi")}


async def test_grpcurl_describes_a_method(server: Server) -> None:
    result = await grpcurl(server, server.address, "describe", f"{ELIZA}.Say")
    assert result.returncode == 0, result.stderr
    assert "rpc Say ( .connectrpc.eliza.v1.SayRequest )" in result.stdout
    unknown = await grpcurl(server, server.address, "describe", "no.such.Symbol")
    assert unknown.returncode != 0
    assert "no.such.Symbol" in unknown.stderr


async def test_grpcurl_health_check(server: Server) -> None:
    assert await health(server, ELIZA) == "SERVING"
    assert await health(server, "") == "SERVING"
    server.checker.set_status(ELIZA, ServingStatus.NOT_SERVING)
    assert await health(server, ELIZA) == "NOT_SERVING"
    unknown = await grpcurl(
        server, "-d", '{"service":"no.such.Service"}', server.address, "grpc.health.v1.Health/Check"
    )
    assert unknown.returncode != 0
    assert "NotFound" in unknown.stderr


async def _next_message(stdout: asyncio.StreamReader) -> object:
    """One pretty-printed JSON message from grpcurl's output."""
    lines: list[str] = []
    while not lines or lines[-1] != "}":
        line = await asyncio.wait_for(stdout.readline(), TOOL_TIMEOUT)
        assert line, "grpcurl ended early"
        if line.strip():
            lines.append(line.decode().rstrip())
    return json.loads("\n".join(lines))


async def test_grpcurl_health_watch(server: Server) -> None:
    process = await asyncio.create_subprocess_exec(
        find_grpcurl(),
        "-plaintext",
        "-d",
        json.dumps({"service": ELIZA}),
        server.address,
        "grpc.health.v1.Health/Watch",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        assert await _next_message(process.stdout) == {"status": "SERVING"}
        server.checker.set_status(ELIZA, ServingStatus.NOT_SERVING)
        assert await _next_message(process.stdout) == {"status": "NOT_SERVING"}
        server.checker.clear_status(ELIZA)
        assert await _next_message(process.stdout) == {"status": "SERVICE_UNKNOWN"}
        server.checker.set_status(ELIZA, ServingStatus.SERVING)
        assert await _next_message(process.stdout) == {"status": "SERVING"}
        # Shutting down sends NOT_SERVING and ends the watch with OK, so that it does not
        # hold the server's graceful shutdown.
        server.checker.shutdown()
        assert await _next_message(process.stdout) == {"status": "NOT_SERVING"}
        assert await asyncio.wait_for(process.wait(), TOOL_TIMEOUT) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert server.checker._watchers == {}


async def test_a_watcher_that_goes_away_is_forgotten(server: Server) -> None:
    process = await asyncio.create_subprocess_exec(
        find_grpcurl(),
        "-plaintext",
        server.address,
        "grpc.health.v1.Health/Watch",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        assert await _next_message(process.stdout) == {"status": "SERVING"}
        assert server.checker._watchers != {}
    finally:
        process.kill()
        await process.wait()
    for _ in range(500):
        if not server.checker._watchers:
            break
        await asyncio.sleep(0.01)
    assert server.checker._watchers == {}


def _buf_curl(protocol: str, reflect_protocol: str, *args: str) -> list[str]:
    return [
        find_buf(),
        "curl",
        "--protocol",
        protocol,
        "--http2-prior-knowledge",  # reflection is a bidi stream: HTTP/2 only
        "--reflect",
        "--reflect-protocol",
        reflect_protocol,
        *args,
    ]


@pytest.mark.parametrize(
    ("protocol", "reflect_protocol"),
    [
        ("grpc", "grpc-v1"),
        ("grpc", "grpc-v1alpha"),
        ("connect", "grpc-v1"),  # reflection itself over Connect and gRPC-Web too
        ("grpcweb", "grpc-v1alpha"),
    ],
)
async def test_buf_curl_through_reflection(
    server: Server, protocol: str, reflect_protocol: str
) -> None:
    listed = await run(*_buf_curl(protocol, reflect_protocol, "--list-services", server.url))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == SERVICES

    methods = await run(*_buf_curl(protocol, reflect_protocol, "--list-methods", server.url))
    assert methods.returncode == 0, methods.stderr
    assert f"{ELIZA}/Say" in methods.stdout.split()

    say = await run(
        *_buf_curl(
            protocol, reflect_protocol, "-d", '{"sentence": "hi"}', f"{server.url}/{ELIZA}/Say"
        )
    )
    assert say.returncode == 0, say.stderr
    assert json.loads(say.stdout) == {"sentence": Eliza(SEED).reply("hi")}

    check = await run(
        *_buf_curl(
            protocol,
            reflect_protocol,
            "-d",
            json.dumps({"service": ELIZA}),
            f"{server.url}/grpc.health.v1.Health/Check",
        )
    )
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout) == {"status": "SERVING"}
