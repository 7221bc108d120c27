"""connect-python's HTTP/2 client (``HTTP2Transport``) calling real HTTP/2 servers.

Three Eliza servers, each over h2c (prior knowledge) and over TLS (h2 by ALPN, with a
certificate from a throwaway ``trustme`` CA):

* **grpcio**: a ``grpc.aio`` server in this process (gRPC only), written with
  ``grpc.method_handlers_generic_handler`` and the eliza_pb2 messages, its errors with
  details made by ``grpcio-status``;
* **connect-go**: ``elizainterop serve`` (``tests/interop/go/server.go``), over gRPC,
  gRPC-Web and Connect;
* **connect-node**: ``tests/interop/node/server.mjs`` (``connectNodeAdapter`` on
  ``http2.createServer``), over gRPC, gRPC-Web and Connect.

They all give the same fixed replies (``server.go`` describes them) rather than Eliza's real
ones, so one set of assertions fits every server. Every case calls each RPC kind (Converse
full-duplex: each sentence is sent only after the reply to the previous one has arrived,
which a half-duplex transport could not do), checks headers and trailers and that the
response's content type belongs to the protocol asked for; a Say of an empty sentence must
fail with ``invalid_argument`` and a ``google.protobuf.StringValue`` detail; a Say and an
Introduce that the server is asked to delay (``eliza-delay-ms``) must fail with
``deadline_exceeded`` well before the delay ends, after which the same transport still
works. Every server speaks HTTP/2 only, so a client that fell back to HTTP/1.1 would fail.

The Go and Node servers are processes started once per module, when a case first needs
them, and stopped at its end: they stop gracefully when their stdin closes, and a server
that does not stop (a connection left open, a call still running) fails the test. The Go
program is built and cached by ``test_interop_go.py``'s ``go_client`` fixture; the Node
server needs ``npm ci --prefix tests/interop/node`` (``tools/setup.sh`` runs it) and ``buf``,
with which it generates its descriptors into ``tests/interop/node/gen``. Without Go, Node,
those packages or buf the tests fail, saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import select
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, Any

import grpc
import pytest
import trustme
from eliza.v1 import eliza_pb2
from eliza.v1.eliza_connect import AsyncElizaServiceClient
from google.protobuf import any_pb2, wrappers_pb2
from google.rpc import code_pb2, status_pb2  # type: ignore[import-untyped]  # no stubs
from grpc_status import rpc_status

from connectrpc.client import BidiStream, ClientOptions, HTTP2Transport
from connectrpc.errors import Code, ConnectError

from ..go_tools import find_go_tool
from . import test_interop_go

REPO = Path(__file__).resolve().parents[2]
NODE_DIR = REPO / "tests" / "interop" / "node"
SERVICE = "connectrpc.eliza.v1.ElizaService"

go_client = test_interop_go.go_client  # the fixture that builds (and caches) the Go program

STARTUP_TIMEOUT = 30.0  # seconds for a server to print its URL
STOP_TIMEOUT = 10.0  # seconds for a server to stop once its stdin is closed (5 s of grace)
CALL_TIMEOUT = 10.0  # the deadline of every call that is meant to succeed
REPLY_TIMEOUT = 5.0  # seconds for each Converse reply while the request stream is open
DELAY_MS = 30_000  # how long a delayed call would take, far beyond its deadline
SHORT_DEADLINE = 0.3
EMPTY_SENTENCE = "say something: the sentence is empty"
CONTENT_TYPES = {
    "grpc": ("application/grpc",),
    "grpc-web": ("application/grpc-web",),
    "connect": ("application/proto", "application/connect+proto"),
}


@dataclasses.dataclass(frozen=True)
class Case:
    peer: str
    tls: bool
    protocol: str

    def __str__(self) -> str:
        return f"{self.peer}-{'tls' if self.tls else 'h2c'}-{self.protocol}"


CASES = [
    *(Case("grpcio", tls, "grpc") for tls in (False, True)),
    *(
        Case(peer, tls, protocol)
        for peer in ("connect-go", "connect-node")
        for tls in (False, True)
        for protocol in ("grpc", "grpc-web", "connect")
    ),
]


# --- certificates -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Certs:
    """A server certificate for 127.0.0.1 (PEM files) from a throwaway CA."""

    ca: trustme.CA
    cert_file: Path
    key_file: Path

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(context)
        return context


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("certs")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(b"".join(pem.bytes() for pem in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(key_file))
    return Certs(ca, cert_file, key_file)


# --- the Go and Node servers: processes -----------------------------------------------------


class ServerProcess:
    """A server that prints ``listening on URL`` once bound and stops when stdin closes."""

    def __init__(self, name: str, args: list[str], *, cwd: Path | None = None) -> None:
        self.name = name
        self._stderr: IO[bytes] = tempfile.TemporaryFile(prefix="interop-http2-")  # noqa: SIM115
        self._process = subprocess.Popen(
            args,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], STARTUP_TIMEOUT)
        line = self._process.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("listening on "):
            problem = self.stop()
            pytest.fail(
                f"the {name} server did not start within {STARTUP_TIMEOUT} s "
                f"(it printed {line!r}; {problem or 'it exited cleanly'})"
            )
        self.url = line.removeprefix("listening on ")

    def stop(self) -> str | None:
        """Stop the server; a description of what went wrong, if anything did."""
        process = self._process
        problem = None
        if process.stdin is not None and not process.stdin.closed:
            process.stdin.close()  # the server's cue to stop gracefully
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            problem = f"the {self.name} server did not stop within {STOP_TIMEOUT} s"
        if process.stdout is not None:
            process.stdout.close()
        if problem is None and process.returncode != 0:
            problem = f"the {self.name} server exited with {process.returncode}"
        if problem is not None:
            self._stderr.seek(0)
            problem += "\n" + self._stderr.read().decode(errors="replace")
        self._stderr.close()
        return problem


class Servers:
    """One server process per security (h2c, TLS), started when first asked for."""

    def __init__(self, start: Callable[[bool], ServerProcess]) -> None:
        self._start = start
        self._running: dict[bool, ServerProcess] = {}

    def url(self, tls: bool) -> str:
        if tls not in self._running:
            self._running[tls] = self._start(tls)
        return self._running[tls].url

    def stop_all(self) -> None:
        problems = [problem for server in self._running.values() if (problem := server.stop())]
        self._running.clear()
        if problems:
            pytest.fail("\n".join(problems))


@pytest.fixture(scope="module")
def go_servers(go_client: Path, certs: Certs) -> Iterator[Servers]:
    def start(tls: bool) -> ServerProcess:
        flags = ["-tls-cert", str(certs.cert_file), "-tls-key", str(certs.key_file)] if tls else []
        return ServerProcess("connect-go", [str(go_client), "serve", *flags])

    servers = Servers(start)
    yield servers
    servers.stop_all()


def _buf() -> str:
    return find_go_tool("buf", "the connect-node server generates code with it")


@pytest.fixture(scope="module")
def node_servers(certs: Certs) -> Iterator[Servers]:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "Node.js is not installed, and the connect-node server needs it: install "
            "Node.js (with npm), then run tools/setup.sh"
        )
    if not (NODE_DIR / "node_modules" / "@connectrpc" / "connect-node").is_dir():
        pytest.fail("tests/interop/node/node_modules is missing: run tools/setup.sh (npm ci)")
    try:
        done = subprocess.run(
            [_buf(), "generate"], cwd=NODE_DIR, capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"buf generate in {NODE_DIR} did not finish within 120 s")
    if done.returncode != 0:
        pytest.fail(f"buf generate in {NODE_DIR} failed:\n{done.stdout}{done.stderr}")

    def start(tls: bool) -> ServerProcess:
        flags = (
            ["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file)] if tls else []
        )
        return ServerProcess("connect-node", [node, "server.mjs", *flags], cwd=NODE_DIR)

    servers = Servers(start)
    yield servers
    servers.stop_all()


# --- the grpcio server ----------------------------------------------------------------------


def _grpcio_delay(context: grpc.aio.ServicerContext[Any, Any]) -> float:
    for key, value in context.invocation_metadata() or ():
        if key == "eliza-delay-ms":
            return int(value) / 1000
    return 0.0


async def _grpcio_say(
    request: eliza_pb2.SayRequest, context: grpc.aio.ServicerContext[Any, Any]
) -> eliza_pb2.SayResponse:
    await context.send_initial_metadata((("eliza-peer", "grpcio"),))
    await asyncio.sleep(_grpcio_delay(context))  # grpcio cancels it at the deadline
    if not request.sentence.strip():
        detail = any_pb2.Any()
        detail.Pack(wrappers_pb2.StringValue(value="SayRequest.sentence"))
        status = status_pb2.Status(
            code=code_pb2.INVALID_ARGUMENT, message=EMPTY_SENTENCE, details=[detail]
        )
        await context.abort_with_status(rpc_status.to_status(status))
    return eliza_pb2.SayResponse(sentence=f"You said: {request.sentence}")


async def _grpcio_introduce(
    request: eliza_pb2.IntroduceRequest, context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[eliza_pb2.IntroduceResponse]:
    await context.send_initial_metadata((("eliza-peer", "grpcio"),))
    await asyncio.sleep(_grpcio_delay(context))
    for sentence in (f"Hello, {request.name}.", "I am Eliza.", "How do you do?"):
        yield eliza_pb2.IntroduceResponse(sentence=sentence)


async def _grpcio_pontificate(
    requests: AsyncIterator[eliza_pb2.PontificateRequest],
    context: grpc.aio.ServicerContext[Any, Any],
) -> eliza_pb2.PontificateResponse:
    await context.send_initial_metadata((("eliza-peer", "grpcio"),))
    heard = [request.sentence async for request in requests]
    context.set_trailing_metadata((("eliza-heard", str(len(heard))),))
    return eliza_pb2.PontificateResponse(sentence="I heard: " + " | ".join(heard))


async def _grpcio_converse(
    requests: AsyncIterator[eliza_pb2.ConverseRequest],
    context: grpc.aio.ServicerContext[Any, Any],
) -> AsyncIterator[eliza_pb2.ConverseResponse]:
    await context.send_initial_metadata((("eliza-peer", "grpcio"),))
    turns = 0
    async for request in requests:
        turns += 1
        yield eliza_pb2.ConverseResponse(sentence=f"You said: {request.sentence}")
    context.set_trailing_metadata((("eliza-turns", str(turns)),))


def _grpcio_handler() -> grpc.GenericRpcHandler:
    def ser(message: Any) -> bytes:
        return bytes(message.SerializeToString())

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Say": grpc.unary_unary_rpc_method_handler(
                _grpcio_say, eliza_pb2.SayRequest.FromString, ser
            ),
            "Introduce": grpc.unary_stream_rpc_method_handler(
                _grpcio_introduce, eliza_pb2.IntroduceRequest.FromString, ser
            ),
            "Pontificate": grpc.stream_unary_rpc_method_handler(
                _grpcio_pontificate, eliza_pb2.PontificateRequest.FromString, ser
            ),
            "Converse": grpc.stream_stream_rpc_method_handler(
                _grpcio_converse, eliza_pb2.ConverseRequest.FromString, ser
            ),
        },
    )


@contextlib.asynccontextmanager
async def _grpcio_server(certs: Certs, tls: bool) -> AsyncIterator[str]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_grpcio_handler(),))
    if tls:
        credentials = grpc.ssl_server_credentials(
            [(certs.key_file.read_bytes(), certs.cert_file.read_bytes())]
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        await server.stop(grace=1)


# --- the client -----------------------------------------------------------------------------


@dataclasses.dataclass
class Target:
    case: Case
    client: AsyncElizaServiceClient


@pytest.fixture(params=CASES, ids=str)
async def target(request: pytest.FixtureRequest, certs: Certs) -> AsyncIterator[Target]:
    case: Case = request.param
    async with contextlib.AsyncExitStack() as stack:
        if case.peer == "grpcio":
            url = await stack.enter_async_context(_grpcio_server(certs, case.tls))
        else:
            fixture = "go_servers" if case.peer == "connect-go" else "node_servers"
            servers: Servers = request.getfixturevalue(fixture)
            url = servers.url(case.tls)
        transport = (
            HTTP2Transport(ssl_context=certs.client_context()) if case.tls else HTTP2Transport()
        )
        stack.push_async_callback(transport.aclose)
        client = AsyncElizaServiceClient(
            url, transport, options=ClientOptions(protocol=case.protocol)
        )
        yield Target(case, client)


def _check_head(target: Target, headers: Any) -> None:
    assert headers.get("eliza-peer") == target.case.peer
    content_type = headers.get("content-type", "")
    assert content_type.startswith(CONTENT_TYPES[target.case.protocol]), content_type
    if target.case.protocol == "grpc":
        assert not content_type.startswith("application/grpc-web"), content_type


async def test_every_rpc_kind(target: Target) -> None:
    client = target.client

    said = await client.call_say(
        eliza_pb2.SayRequest(sentence="I am sad"), timeout_seconds=CALL_TIMEOUT
    )
    assert said.message_or_raise().sentence == "You said: I am sad"
    _check_head(target, said.response_headers())

    async with await client.call_introduce(
        eliza_pb2.IntroduceRequest(name="Ada"), timeout_seconds=CALL_TIMEOUT
    ) as introduction:
        sentences = [reply.sentence async for reply in introduction]
    assert introduction.error() is None
    assert sentences == ["Hello, Ada.", "I am Eliza.", "How do you do?"]
    _check_head(target, introduction.response_headers())

    monologue = [eliza_pb2.PontificateRequest(sentence=s) for s in ("Hi.", "I am sad.")]
    heard = await client.call_pontificate(monologue, timeout_seconds=CALL_TIMEOUT)
    assert heard.message_or_raise().sentence == "I heard: Hi. | I am sad."
    _check_head(target, heard.response_headers())
    assert heard.response_trailers().get("eliza-heard") == "2"

    sentences = ["Hello", "I need a holiday", "Goodbye"]
    replies = []
    async with BidiStream.open(client.call_converse, timeout_seconds=CALL_TIMEOUT) as stream:
        for sentence in sentences:
            await stream.send(eliza_pb2.ConverseRequest(sentence=sentence))
            # The request stream is still open: only a full-duplex transport gets the reply.
            try:
                reply = await asyncio.wait_for(stream.receive(), REPLY_TIMEOUT)
            except asyncio.TimeoutError:
                pytest.fail(f"no reply to {sentence!r} while the request stream was open")
            assert reply is not None, stream.error()
            replies.append(reply.sentence)
        stream.close_send()
        assert await stream.receive() is None
        assert stream.error() is None
        _check_head(target, await stream.response_headers())
        assert stream.response_trailers().get("eliza-turns") == "3"
    assert replies == [f"You said: {s}" for s in sentences]


async def test_error_with_details(target: Target) -> None:
    with pytest.raises(ConnectError) as info:
        await target.client.say(eliza_pb2.SayRequest(sentence=""), timeout_seconds=CALL_TIMEOUT)
    err = info.value
    assert err.code is Code.INVALID_ARGUMENT
    assert err.message == EMPTY_SENTENCE
    assert err.wire
    assert [d.type_name for d in err.details] == ["google.protobuf.StringValue"]
    hint = err.details[0].unpack(wrappers_pb2.StringValue)
    assert hint is not None
    assert hint.value == "SayRequest.sentence"
    assert err.metadata.get("eliza-peer") == target.case.peer


async def test_deadline(target: Target) -> None:
    client = target.client
    delayed = {"eliza-delay-ms": str(DELAY_MS)}

    start = time.monotonic()
    with pytest.raises(ConnectError) as info:
        await client.say(
            eliza_pb2.SayRequest(sentence="Are you there?"),
            extra_headers=delayed,
            timeout_seconds=SHORT_DEADLINE,
        )
    assert info.value.code is Code.DEADLINE_EXCEEDED, info.value

    async with await client.call_introduce(
        eliza_pb2.IntroduceRequest(name="Ada"),
        extra_headers=delayed,
        timeout_seconds=SHORT_DEADLINE,
    ) as introduction:
        sentences = [reply.sentence async for reply in introduction]
    assert sentences == []
    error = introduction.error()
    assert error is not None
    assert error.code is Code.DEADLINE_EXCEEDED, error
    # Both calls ended at their deadlines, long before the server would have answered.
    assert time.monotonic() - start < 5 * SHORT_DEADLINE + 2

    # The streams were reset, not the connection: the transport still works.
    said = await client.say(
        eliza_pb2.SayRequest(sentence="Still here"), timeout_seconds=CALL_TIMEOUT
    )
    assert said.sentence == "You said: Still here"
