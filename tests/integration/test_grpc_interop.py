"""A real gRPC client (grpcio's ``grpc.aio``, C-core) calling our ASGI app over gRPC.

hypercorn serves the app over h2c on 127.0.0.1, with ``connectrpc.hypercorn``'s fixes (a
deadline makes grpcio send after the answer, which stock hypercorn 0.18 answers by dropping
the connection). Every call shape is covered, plus an error
with details read back through ``grpcio-status``, response metadata both ways, and a
deadline enforced from ``grpc-timeout``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import wrappers_pb2
from grpc_status import rpc_status
from hypercorn.asyncio import serve
from hypercorn.config import Config

from connectrpc.hypercorn import patch_hypercorn_h2

from ..api._service import EchoService, S, make_app
from .test_sockets import _serving, listening_socket

SERVICE = "/test.v1.EchoService/"


def _ser(message: S) -> bytes:
    return message.SerializeToString()


@pytest.fixture
async def grpc_channel() -> AsyncIterator[tuple[grpc.aio.Channel, EchoService]]:
    patch_hypercorn_h2()
    service = EchoService()
    sock = listening_socket()
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    stop = asyncio.Event()
    task = asyncio.ensure_future(serve(make_app(service), config, shutdown_trigger=stop.wait))
    await _serving(port, task)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel, service
    finally:
        await channel.close()
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_all_call_shapes(grpc_channel: tuple[grpc.aio.Channel, EchoService]) -> None:
    channel, _ = grpc_channel
    echo = channel.unary_unary(SERVICE + "Echo", _ser, S.FromString)
    call = echo(S(value="hi"), metadata=(("x-echo", "back"),))
    assert await call == S(value="hi")
    assert ("x-echo", "back") in tuple(await call.initial_metadata())
    assert ("x-echo-trailer", "done") in tuple(await call.trailing_metadata())

    split = channel.unary_stream(SERVICE + "Split", _ser, S.FromString)
    assert [m.value async for m in split(S(value="abc"))] == ["a", "b", "c"]

    concat = channel.stream_unary(SERVICE + "Concat", _ser, S.FromString)
    assert await concat(iter([S(value="x"), S(value="y")])) == S(value="xy")

    upper = channel.stream_stream(SERVICE + "Upper", _ser, S.FromString)

    async def requests() -> AsyncIterator[S]:
        for word in ("a", "b"):
            yield S(value=word)

    assert [m.value async for m in upper(requests())] == ["A", "B"]


async def test_error_with_details(grpc_channel: tuple[grpc.aio.Channel, EchoService]) -> None:
    channel, _ = grpc_channel
    fail = channel.unary_unary(SERVICE + "Fail", _ser, S.FromString)
    call = fail(S(value="no way"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details() == "no way"
    status = await rpc_status.aio.from_call(call)
    assert status is not None
    detail = wrappers_pb2.Int32Value()
    assert status.details[0].Unpack(detail)
    assert detail.value == 7


async def test_deadline_and_unknown_method(
    grpc_channel: tuple[grpc.aio.Channel, EchoService],
) -> None:
    channel, service = grpc_channel
    slow = channel.unary_unary(SERVICE + "Slow", _ser, S.FromString)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await slow(S(value="5"), timeout=0.2)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.wait_for(service.cancelled.wait(), 2)
    missing = channel.unary_unary(SERVICE + "Missing", _ser, S.FromString)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await missing(S())
    assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
