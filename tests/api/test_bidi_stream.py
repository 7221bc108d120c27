"""``BidiStream``: a bidi call driven step by step, full-duplex over the in-memory transport."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator

import pytest

from connectrpc.client import AsyncConnectClient, BidiStream, ClientOptions
from connectrpc.errors import Code, ConnectError
from connectrpc.method import MethodInfo, StreamType
from connectrpc.server import ConnectASGIApplication, RequestContext, bidi_stream_handler
from connectrpc.testing import ASGITransport

from ._service import S

CHAT: MethodInfo[S, S] = MethodInfo("test.v1.Chat", "Chat", S, S, StreamType.BIDI_STREAM)


class Chat:
    """Answers each message as it comes; "stop" ends the call, "fail" fails it."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.seen: list[str] = []

    async def chat(self, requests: AsyncIterator[S], ctx: RequestContext) -> AsyncIterator[S]:
        ctx.response_headers["x-chat"] = "on"
        try:
            async for request in requests:
                self.seen.append(request.value)
                if request.value == "fail":
                    raise ConnectError(Code.ABORTED, "asked to fail")
                if request.value == "stop":
                    ctx.response_trailers["x-stopped"] = "yes"
                    return
                yield S(value=f"re: {request.value}")
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        ctx.response_trailers["x-end"] = "client closed"


@pytest.fixture(params=["connect", "grpc-web", "grpc"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def chat_client(chat: Chat, protocol: str) -> AsyncConnectClient:
    app = ConnectASGIApplication([bidi_stream_handler(CHAT, chat.chat)])
    return AsyncConnectClient(
        "http://test", ASGITransport(app), options=ClientOptions(protocol=protocol)
    )


async def test_interleaved_send_and_receive(protocol: str) -> None:
    chat = Chat()
    client = chat_client(chat, protocol)
    call = functools.partial(client.call_bidi_stream, CHAT)
    async with BidiStream.open(call, timeout_seconds=10) as stream:
        # The server answers each request before the next is sent: full duplex.
        for word in ("one", "two", "three"):
            await stream.send(S(value=word))
            reply = await asyncio.wait_for(stream.receive(), 5)
            assert reply == S(value=f"re: {word}")
        assert (await stream.response_headers())["x-chat"] == "on"
        stream.close_send()
        assert [m async for m in stream] == []
        assert stream.error() is None
        assert stream.response_trailers()["x-end"] == "client closed"
    assert chat.seen == ["one", "two", "three"]


async def test_server_ends_first(protocol: str) -> None:
    chat = Chat()
    client = chat_client(chat, protocol)
    stream = BidiStream.open(functools.partial(client.call_bidi_stream, CHAT))
    await stream.send(S(value="a"))
    await stream.send(S(value="stop"))
    assert await stream.receive() == S(value="re: a")
    assert await stream.receive() is None
    assert stream.error() is None
    assert stream.response_trailers()["x-stopped"] == "yes"
    with pytest.raises(ConnectError) as sent_late:
        await asyncio.wait_for(stream.send(S(value="late")), 5)
    assert sent_late.value.code is Code.FAILED_PRECONDITION
    await stream.close()


async def test_server_error_is_the_outcome(protocol: str) -> None:
    chat = Chat()
    client = chat_client(chat, protocol)
    async with BidiStream.open(functools.partial(client.call_bidi_stream, CHAT)) as stream:
        await stream.send(S(value="fail"))
        assert await stream.receive() is None
        error = stream.error()
        assert error is not None
        assert error.code is Code.ABORTED


async def test_leaving_early_cancels_the_call(protocol: str) -> None:
    chat = Chat()
    client = chat_client(chat, protocol)
    async with BidiStream.open(functools.partial(client.call_bidi_stream, CHAT)) as stream:
        await stream.send(S(value="hello"))
        assert await stream.receive() == S(value="re: hello")
    await asyncio.wait_for(chat.cancelled.wait(), 5)
    error = stream.error()
    assert error is not None
    assert error.code is Code.CANCELED
    stream.close_send()
    with pytest.raises(RuntimeError, match="close_send"):
        await stream.send(S(value="x"))


async def test_closing_before_the_head_arrives(protocol: str) -> None:
    chat = Chat()
    client = chat_client(chat, protocol)
    stream = BidiStream.open(functools.partial(client.call_bidi_stream, CHAT))
    await stream.close()
    error = stream.error()
    assert error is not None
    assert error.code is Code.CANCELED
    assert await stream.receive() is None


async def test_deadline(protocol: str) -> None:
    chat = Chat()
    client = chat_client(chat, protocol)
    stream = BidiStream.open(functools.partial(client.call_bidi_stream, CHAT), timeout_seconds=0.2)
    await stream.send(S(value="a"))
    assert await stream.receive() == S(value="re: a")
    assert await asyncio.wait_for(stream.receive(), 5) is None
    error = stream.error()
    assert error is not None
    assert error.code is Code.DEADLINE_EXCEEDED
    await stream.close()
