"""``BidiStream`` over ``HTTP2Transport`` against our app under hypercorn: full duplex, and
leaving early resets the stream and frees its slot."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import pytest

from connectrpc.client import AsyncConnectClient, BidiStream, ClientOptions
from connectrpc.errors import Code

from ..api._service import UPPER, S
from .test_http2_transport import hypercorn


@pytest.mark.parametrize("protocol", ["grpc", "connect", "grpc-web"])
@pytest.mark.parametrize("tls", [False, True])
async def test_bidi_stream_handle_over_http2(tmp_path: Path, protocol: str, tls: bool) -> None:
    async with hypercorn(tmp_path, tls) as served:
        transport = served.transport()
        client = AsyncConnectClient(served.url, transport, options=ClientOptions(protocol=protocol))
        call = functools.partial(client.call_bidi_stream, UPPER)
        # Each reply arrives before the next request is sent: full duplex.
        async with BidiStream.open(call, timeout_seconds=10) as stream:
            for word in ("one", "two", "three"):
                await stream.send(S(value=word))
                reply = await asyncio.wait_for(stream.receive(), 5)
                assert reply == S(value=word.upper())
            stream.close_send()
            assert await stream.receive() is None
        assert stream.error() is None

        # Leaving before the end cancels the call: the stream is reset and its slot freed.
        async with BidiStream.open(call, timeout_seconds=10) as stream:
            await stream.send(S(value="x"))
            assert await asyncio.wait_for(stream.receive(), 5) == S(value="X")
        error = stream.error()
        assert error is not None
        assert error.code is Code.CANCELED
        for _ in range(100):
            if transport.open_streams() == 0:
                break
            await asyncio.sleep(0.01)
        assert transport.open_streams() == 0
        await transport.aclose()
