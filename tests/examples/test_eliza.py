"""The Eliza example: its engine, its service over real sockets, its CLIs and the demo.

``conftest.py`` generates the example code and puts ``examples`` and ``examples/gen`` on
``sys.path``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import h2.config
import h2.connection
import h2.events
import pytest
import trustme
from eliza.v1 import eliza_pb2
from eliza.v1.eliza_connect import AsyncElizaServiceClient
from eliza_client import CONVERSATION, MONOLOGUE, run_conversation
from eliza_client_sync import run_conversation_sync
from eliza_demo import start_server, stop_server
from eliza_engine import Eliza, introduction, is_goodbye, match, reflect
from eliza_server import ELIZA_VERSION, ElizaService, asgi_app, bind_socket, make_config, url_of
from eliza_server import main as eliza_server_main
from hypercorn.asyncio import serve

from connectrpc.client import BidiStream
from connectrpc.errors import Code, ConnectError
from connectrpc.testing import ASGITransport

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEED = 1966

# --- the engine ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("i am sure of my memory", "you are sure of your memory"),
        ("you are right about me", "I am right about you"),
        ("i was wrong", "you were wrong"),
        ("you were kind to me", "I was kind to you"),
        ("i'm tired of myself", "you are tired of yourself"),
        ("tell you about mine", "tell me about yours"),
        ("you hate me", "I hate you"),
        ("i love you", "you love me"),
        ("our plans", "your plans"),
        ("the cat sat", "the cat sat"),
    ],
)
def test_reflect(text: str, expected: str) -> None:
    assert reflect(text) == expected


def test_match() -> None:
    words = ["well", "i", "am", "very", "sad", "today"]
    assert match(("*", "i", "am", "@sad", "*"), words) is None
    assert match(("*", "i", "am", "*"), words) == [["well"], ["very", "sad", "today"]]
    assert match(("*", "i", "am", "very", "@sad", "*"), words) == [["well"], ["sad"], ["today"]]
    assert match(("*",), []) == [[]]
    assert match(("i",), []) is None
    # "*" is lazy: the first "i" splits.
    assert match(("*", "i", "*"), ["i", "know", "i", "can"]) == [[], ["know", "i", "can"]]


@pytest.mark.parametrize(
    ("sentence", "candidates"),
    [
        (
            "I am unhappy.",
            {
                "I am sorry to hear that you are unhappy.",
                "Do you think that coming here will help you not to be unhappy?",
                "I'm sure it's not pleasant to be unhappy.",
                "Can you explain what made you unhappy?",
            },
        ),
        (
            "I need a new job",
            {
                "What would it mean to you if you got a new job?",
                "Why do you want a new job?",
                "Suppose you got a new job soon.",
                "What if you never got a new job?",
                "What would getting a new job mean to you?",
            },
        ),
        (
            # "computer" (rank 50) beats "i" (rank 0), whatever the order.
            "I think my computer hates me",
            {
                "Do computers worry you?",
                "Why do you mention computers?",
                "What do you think machines have to do with your problem?",
                "Don't you think computers can help people?",
                "What about machines worries you?",
                "What do you think about machines?",
            },
        ),
        (
            "You are annoying",
            {
                "What makes you think I am annoying?",
                "Does it please you to believe I am annoying?",
                "Do you sometimes wish you were annoying?",
                "Perhaps you would like to be annoying.",
            },
        ),
        (
            "My brother never calls",
            {
                "Tell me more about your family.",
                "Who else in your family never calls?",
                "Your brother?",
                "What else comes to mind when you think of your brother?",
            },
        ),
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_keyword_replies(sentence: str, candidates: set[str], seed: int) -> None:
    assert Eliza(seed).reply(sentence) in candidates


def test_cycles_through_templates() -> None:
    eliza = Eliza(SEED)
    replies = [eliza.reply("Perhaps.") for _ in range(6)]
    assert len(set(replies[:5])) == 5  # the "perhaps" rule has five templates
    assert replies[5] == replies[0]


def test_deterministic_given_a_seed() -> None:
    script = [*CONVERSATION[:-1], *MONOLOGUE, "It is raining.", "Why?", "I was there."]

    def replies(seed: int) -> list[str]:
        eliza = Eliza(seed)
        return [eliza.reply(sentence) for sentence in script]

    assert replies(7) == replies(7)
    assert replies(7) != replies(8)


def test_memory_is_recalled_when_nothing_matches() -> None:
    eliza = Eliza(SEED)
    eliza.reply("My sister took my bicycle.")
    recalled = eliza.reply("The weather is nice.")
    assert "your sister took your bicycle" in recalled
    # The memory is used once; then the generic prompts take over.
    assert "bicycle" not in eliza.reply("The weather is nice.")


def test_goodbye() -> None:
    assert is_goodbye("OK, goodbye then!")
    assert is_goodbye("Bye.")
    assert not is_goodbye("Maybe I should buy a goat.")
    eliza = Eliza(SEED)
    eliza.reply("Hello")
    assert not eliza.finished
    assert eliza.reply("Goodbye!").startswith("Goodbye.")
    assert eliza.finished


def test_monologue_answers_the_most_significant_sentence() -> None:
    answer = Eliza(SEED).reply_to_monologue(
        ["The sun came up.", "My computer is slow.", "I ate toast."]
    )
    assert answer.startswith("You told me 3 things. ")
    assert "comput" in answer or "machine" in answer
    assert Eliza(SEED).reply_to_monologue([]).startswith("You haven't said anything")


def test_introduction() -> None:
    intro = introduction("  Grace   Hopper ")
    assert intro[0] == "Hello Grace Hopper, I'm Eliza."
    assert intro[-1] == "So, Grace Hopper, how are you feeling today?"
    assert introduction("")[0] == "Hello stranger, I'm Eliza."


# --- the service over real sockets --------------------------------------------------------


@contextlib.asynccontextmanager
async def running_server(
    *, tls: trustme.LeafCert | None = None, tmp_path: Path | None = None
) -> AsyncIterator[str]:
    """Serve ``ElizaService(SEED)`` with hypercorn on a free port; yields the base URL."""
    cert_file = key_file = None
    if tls is not None:
        assert tmp_path is not None
        cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
        for index, blob in enumerate(tls.cert_chain_pems):
            blob.write_to_path(str(cert_file), append=index > 0)
        tls.private_key_pem.write_to_path(str(key_file))
    sock = bind_socket("127.0.0.1", 0)
    url = url_of(sock, tls is not None)
    config = make_config(
        sock,
        tls_cert=None if cert_file is None else str(cert_file),
        tls_key=None if key_file is None else str(key_file),
    )
    stop = asyncio.Event()
    app = asgi_app(ElizaService(SEED))
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait, mode="asgi"))
    try:
        yield url
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    async with running_server() as url:
        yield url


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[AsyncElizaServiceClient]:
    async with aiohttp.ClientSession() as session:
        yield AsyncElizaServiceClient(base_url, session)


@pytest.mark.parametrize("use_get", [False, True])
async def test_say(client: AsyncElizaServiceClient, use_get: bool) -> None:
    sentence = "I am feeling sad."
    output = await client.call_say(eliza_pb2.SayRequest(sentence=sentence), use_get=use_get)
    assert output.error() is None
    assert output.message_or_raise().sentence == Eliza(SEED).reply(sentence)
    assert output.response_headers()["eliza-version"] == ELIZA_VERSION


async def test_say_empty_is_invalid_argument(client: AsyncElizaServiceClient) -> None:
    with pytest.raises(ConnectError) as excinfo:
        await client.say(eliza_pb2.SayRequest(sentence="  "))
    assert excinfo.value.code is Code.INVALID_ARGUMENT
    assert "empty" in excinfo.value.message
    assert excinfo.value.wire

    output = await client.call_say(eliza_pb2.SayRequest())
    error = output.error()
    assert error is not None
    assert error.code is Code.INVALID_ARGUMENT
    assert output.message() is None
    # Headers set before the handler failed still reach the client.
    assert output.response_headers().get("eliza-version") == ELIZA_VERSION


async def test_converse(client: AsyncElizaServiceClient) -> None:
    sentences = ["Hello.", "I remember my first computer.", "You are a machine."]
    output = await client.call_converse(
        eliza_pb2.ConverseRequest(sentence=sentence) for sentence in sentences
    )
    async with output:
        replies = [response.sentence async for response in output]
    assert output.error() is None
    expected = Eliza(SEED)
    assert replies == [expected.reply(sentence) for sentence in sentences]
    assert output.response_headers()["eliza-version"] == ELIZA_VERSION
    assert output.response_trailers()["eliza-turns"] == "3"


async def test_converse_ends_after_goodbye(client: AsyncElizaServiceClient) -> None:
    async def requests() -> AsyncIterator[eliza_pb2.ConverseRequest]:
        for sentence in ("I am happy.", "Goodbye!", "Are you still there?"):
            yield eliza_pb2.ConverseRequest(sentence=sentence)

    replies = [response.sentence async for response in client.converse(requests())]
    assert len(replies) == 2
    assert replies[1].startswith("Goodbye.")


async def test_introduce(client: AsyncElizaServiceClient) -> None:
    output = await client.call_introduce(eliza_pb2.IntroduceRequest(name="Ada"))
    async with output:
        sentences = [response.sentence async for response in output]
    assert output.error() is None
    assert sentences == introduction("Ada")
    assert len(sentences) > 1
    assert output.response_headers()["eliza-version"] == ELIZA_VERSION


async def test_pontificate(client: AsyncElizaServiceClient) -> None:
    output = await client.call_pontificate(
        eliza_pb2.PontificateRequest(sentence=sentence) for sentence in MONOLOGUE
    )
    assert output.message_or_raise().sentence == Eliza(SEED).reply_to_monologue(MONOLOGUE)
    assert output.response_headers()["eliza-version"] == ELIZA_VERSION
    assert output.response_trailers()["eliza-heard"] == str(len(MONOLOGUE))

    empty = await client.pontificate([])
    assert empty.sentence.startswith("You haven't said anything")


async def test_h2c_prior_knowledge(base_url: str) -> None:
    """The server speaks HTTP/2 over cleartext: a Connect unary call over raw h2."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    body = json.dumps({"sentence": "I am unhappy"}).encode()
    conn.send_headers(
        1,
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", f"{host}:{port}"),
            (":path", "/connectrpc.eliza.v1.ElizaService/Say"),
            ("content-type", "application/json"),
            ("connect-protocol-version", "1"),
        ],
    )
    conn.send_data(1, body, end_stream=True)
    writer.write(conn.data_to_send())
    headers: dict[str, str] = {}
    data = b""
    try:
        done = False
        while not done:
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            assert chunk, "the server closed the connection"
            for event in conn.receive_data(chunk):
                if isinstance(event, h2.events.ResponseReceived):
                    headers = {
                        (k.decode() if isinstance(k, bytes) else k): (
                            v.decode() if isinstance(v, bytes) else v
                        )
                        for k, v in event.headers or []
                    }
                elif isinstance(event, h2.events.DataReceived):
                    data += event.data or b""
                    conn.acknowledge_received_data(event.flow_controlled_length or 0, 1)
                elif isinstance(event, h2.events.StreamEnded):
                    done = True
            writer.write(conn.data_to_send())
    finally:
        writer.close()
        await writer.wait_closed()
    assert headers[":status"] == "200"
    assert headers["eliza-version"] == ELIZA_VERSION
    assert json.loads(data) == {"sentence": Eliza(SEED).reply("I am unhappy")}


async def test_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context()
    ca.configure_trust(context)
    lines: list[str] = []
    async with running_server(tls=ca.issue_cert("127.0.0.1"), tmp_path=tmp_path) as url:
        assert url.startswith("https://127.0.0.1:")
        await run_conversation(url, out=lines.append, ssl_context=context)
    assert "Eliza: Hello Ada, I'm Eliza." in lines
    assert "Error: invalid_argument: say something: the sentence is empty" in lines


@pytest.mark.parametrize("tls", [False, True])
async def test_sync_client_against_the_asgi_server(tls: bool, tmp_path: Path) -> None:
    """Interop: the blocking client (``ElizaServiceClient``) has the whole conversation with
    the ASGI server under hypercorn, over plain HTTP/1.1 and over TLS."""
    ca = trustme.CA()
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async_lines: list[str] = []
    sync_lines: list[str] = []
    cert = ca.issue_cert("127.0.0.1") if tls else None
    async with running_server(tls=cert, tmp_path=tmp_path) as url:
        await run_conversation(url, out=async_lines.append, ssl_context=context if tls else None)
        await asyncio.to_thread(
            run_conversation_sync, url, out=sync_lines.append, ssl_context=context if tls else None
        )
    assert "Error: invalid_argument: say something: the sentence is empty" in sync_lines
    # The same seeded server gives the same answers to both clients.
    replies = [line for line in async_lines if line.startswith("Eliza: ")]
    assert replies
    assert replies == [line for line in sync_lines if line.startswith("Eliza: ")]


# --- the command-line programs ------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_server_cli(signum: signal.Signals) -> None:
    process, url = await start_server("--h2c", "--seed", str(SEED))
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), url
        async with aiohttp.ClientSession() as session:
            client = AsyncElizaServiceClient(url, session)
            reply = await client.say(eliza_pb2.SayRequest(sentence="Hello"))
        assert reply.sentence == Eliza(SEED).reply("Hello")
    finally:
        if process.returncode is None:
            process.send_signal(signum)
        stdout, _ = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode == 0
    assert stdout == b""  # the URL line was the only output


async def test_server_cli_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.private_key_pem.write_to_path(str(key_file))
    for index, blob in enumerate(leaf.cert_chain_pems):
        blob.write_to_path(str(cert_file), append=index > 0)
    process, url = await start_server("--tls-cert", str(cert_file), "--tls-key", str(key_file))
    try:
        assert re.fullmatch(r"https://127\.0\.0\.1:\d+", url), url
        context = ssl.create_default_context()
        ca.configure_trust(context)
        lines: list[str] = []
        await run_conversation(url, out=lines.append, ssl_context=context)
        assert "(response trailer eliza-heard: 3)" in lines
    finally:
        assert await stop_server(process) == 0


async def test_server_cli_bad_certificate(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "eliza_server.py"),
        "--port",
        "0",
        "--tls-cert",
        missing,
        "--tls-key",
        missing,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 1
    assert stdout == b""  # no URL was announced
    assert b"eliza_server: " in stderr


def test_server_cli_rejects_a_malformed_cors_origin(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        eliza_server_main(["--port", "0", "--cors-origin", "http://localhost:3000/"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--cors-origin" in err
    assert "scheme://host[:port]" in err


async def test_server_echoes_the_request_id_and_paces_the_introduction() -> None:
    app = asgi_app(ElizaService(SEED, pause=0.05), cors_origins=["http://page:1"])
    client = AsyncElizaServiceClient("http://test", ASGITransport(app))
    out = await client.call_say(
        eliza_pb2.SayRequest(sentence="hello"),
        extra_headers={"x-request-id": "r-1", "origin": "http://page:1"},
    )
    headers = out.response_headers()
    assert headers["x-request-id"] == "r-1"
    assert headers["access-control-allow-origin"] == "http://page:1"
    assert "eliza-version" in headers["access-control-expose-headers"]
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(ConnectError) as caught:
        async for _ in client.introduce(eliza_pb2.IntroduceRequest(name="x"), timeout_seconds=0.12):
            pass
    assert caught.value.code is Code.DEADLINE_EXCEEDED
    assert loop.time() - start < 1.0


async def test_converse_step_by_step_with_a_bidi_stream_handle() -> None:
    client = AsyncElizaServiceClient("http://test", ASGITransport(asgi_app(ElizaService(SEED))))
    async with BidiStream.open(client.call_converse, timeout_seconds=10) as stream:
        await stream.send(eliza_pb2.ConverseRequest(sentence="I feel sad"))
        first = await stream.receive()
        assert first is not None
        assert first.sentence
        await stream.send(eliza_pb2.ConverseRequest(sentence="goodbye"))
        last = await stream.receive()
        assert last is not None
        assert await stream.receive() is None
    assert stream.error() is None
    assert stream.response_trailers()["eliza-turns"] == "2"


async def test_server_cli_stop_helper() -> None:
    process, _ = await start_server()
    assert await stop_server(process) == 0


def test_demo() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "eliza_demo.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"^Eliza is listening on http://127\.0\.0\.1:\d+$", out, re.MULTILINE)
    for expected in (
        "== Introduce (server streaming) -- as Ada",
        "Eliza: Hello Ada, I'm Eliza.",
        "You:   Hello, Eliza.",
        "(response header eliza-version: 1966.1)",
        "You:   Goodbye.",
        "(response trailer eliza-heard: 3)",
        "Error: invalid_argument: say something: the sentence is empty",
        "== Converse again, over gRPC on HTTP/2 (full duplex)",
        "(response trailer eliza-turns: 5)",
        "The server stopped cleanly.",
    ):
        assert expected in out, f"{expected!r} missing from:\n{out}"
