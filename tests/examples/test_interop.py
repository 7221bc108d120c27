"""Real peers calling the Eliza server: grpcio over gRPC, and ``buf curl`` (a connect-go
client) over gRPC, gRPC-Web and Connect. Every RPC kind, and an error with a detail.

The server is ``eliza_server.py`` itself, started as a process the way a user runs it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from eliza.v1 import eliza_pb2
from eliza_demo import start_server, stop_server
from eliza_engine import Eliza
from google.protobuf import wrappers_pb2
from google.protobuf.message import Message
from grpc_status import rpc_status

from .test_buf import find_buf

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SERVICE = "/connectrpc.eliza.v1.ElizaService/"
SEED = 1966


@pytest.fixture
async def eliza_url() -> AsyncIterator[str]:
    process, url = await start_server("--seed", str(SEED))
    try:
        yield url
    finally:
        assert await stop_server(process) == 0


def _ser(message: Message) -> bytes:
    return message.SerializeToString()


async def test_grpcio_client_every_rpc_kind(eliza_url: str) -> None:
    target = eliza_url.removeprefix("http://")
    async with grpc.aio.insecure_channel(target) as channel:
        say = channel.unary_unary(SERVICE + "Say", _ser, eliza_pb2.SayResponse.FromString)
        call = say(eliza_pb2.SayRequest(sentence="I am sad"))
        response = await call
        assert response.sentence == Eliza(SEED).reply("I am sad")
        assert ("eliza-version", "1966.1") in tuple(await call.initial_metadata())

        introduce = channel.unary_stream(
            SERVICE + "Introduce", _ser, eliza_pb2.IntroduceResponse.FromString
        )
        sentences = [r.sentence async for r in introduce(eliza_pb2.IntroduceRequest(name="Ada"))]
        assert sentences[0] == "Hello Ada, I'm Eliza."

        pontificate = channel.stream_unary(
            SERVICE + "Pontificate", _ser, eliza_pb2.PontificateResponse.FromString
        )
        monologue = [eliza_pb2.PontificateRequest(sentence=s) for s in ("Hi.", "I am sad.")]
        answer = await pontificate(iter(monologue))
        assert answer.sentence.startswith("You told me 2 things.")

        converse = channel.stream_stream(
            SERVICE + "Converse", _ser, eliza_pb2.ConverseResponse.FromString
        )
        # Full duplex: the next sentence is sent only after the previous reply arrived.
        stream = converse()
        replies = []
        for sentence in ("Hello", "I need a holiday", "Goodbye"):
            await stream.write(eliza_pb2.ConverseRequest(sentence=sentence))
            reply = await stream.read()
            assert isinstance(reply, eliza_pb2.ConverseResponse)
            replies.append(reply.sentence)
        await stream.done_writing()
        assert len(replies) == 3
        assert ("eliza-turns", "3") in tuple(await stream.trailing_metadata())

        failing = say(eliza_pb2.SayRequest(sentence=" "))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await failing
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        status = await rpc_status.aio.from_call(failing)
        assert status is not None
        hint = wrappers_pb2.StringValue()
        assert status.details[0].Unpack(hint)
        assert hint.value == "SayRequest.sentence"


def _buf_curl(url: str, method: str, protocol: str, data: str) -> subprocess.CompletedProcess[str]:
    args = [
        find_buf(),
        "curl",
        "--schema",
        str(EXAMPLES / "proto"),
        "--protocol",
        protocol,
        "--http2-prior-knowledge",  # every protocol over HTTP/2, so bidi is full-duplex
        "-d",
        data,
        url + SERVICE + method,
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def _messages(output: str) -> list[dict[str, object]]:
    decoder = json.JSONDecoder()
    out, pos = [], 0
    text = output.strip()
    while pos < len(text):
        obj, end = decoder.raw_decode(text, pos)
        out.append(obj)
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


@pytest.mark.parametrize("protocol", ["grpc", "grpcweb", "connect"])
async def test_buf_curl_every_rpc_kind(eliza_url: str, protocol: str) -> None:
    def run(method: str, data: str) -> subprocess.CompletedProcess[str]:
        return _buf_curl(eliza_url, method, protocol, data)

    say = await asyncio.to_thread(run, "Say", '{"sentence": "I am sad"}')
    assert say.returncode == 0, say.stderr
    assert _messages(say.stdout) == [{"sentence": Eliza(SEED).reply("I am sad")}]

    intro = await asyncio.to_thread(run, "Introduce", '{"name": "Ada"}')
    assert intro.returncode == 0, intro.stderr
    assert _messages(intro.stdout)[0] == {"sentence": "Hello Ada, I'm Eliza."}

    monologue = '{"sentence": "Hi."} {"sentence": "I am sad."}'
    pontificate = await asyncio.to_thread(run, "Pontificate", monologue)
    assert pontificate.returncode == 0, pontificate.stderr
    [answer] = _messages(pontificate.stdout)
    assert str(answer["sentence"]).startswith("You told me 2 things.")

    talk = '{"sentence": "Hello"} {"sentence": "I need a holiday"}'
    converse = await asyncio.to_thread(run, "Converse", talk)
    assert converse.returncode == 0, converse.stderr
    assert len(_messages(converse.stdout)) == 2

    failing = await asyncio.to_thread(run, "Say", '{"sentence": " "}')
    assert failing.returncode != 0
    [error] = _messages(failing.stdout + failing.stderr)
    assert error["code"] == "invalid_argument"
    assert error["message"] == "say something: the sentence is empty"
    # buf curl prints each detail's type and base64 value (and, where it can, a debug form).
    details = error["details"]
    assert isinstance(details, list)
    [detail] = details
    assert detail["type"] == "google.protobuf.StringValue"
    raw = str(detail["value"])
    value = base64.b64decode(raw + "=" * (-len(raw) % 4))
    assert wrappers_pb2.StringValue.FromString(value).value == "SayRequest.sentence"
