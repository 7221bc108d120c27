"""BatchingSender: batches frames into few sends, and holds a producer back when ``send`` does.

An ASGI server that applies backpressure makes ``send`` wait while the client is not
reading; the handler producing the stream must then wait too, with at most a bounded amount
queued in between, however fast it produces.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest

from connectrpc._server.stream_writer import BatchingSender


class GatedSend:
    """An ASGI ``send`` that waits for ``gate`` before each body chunk (a stalled reader)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.chunks: list[bytes] = []

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        await self.gate.wait()
        self.chunks.append(message["body"])


async def test_a_stalled_send_stops_the_producer_within_the_buffer_bound() -> None:
    send = GatedSend()
    writer = BatchingSender(send)
    produced = 0

    async def produce() -> None:
        nonlocal produced
        for _ in range(10_000):
            await writer.write(b"x" * 1000)
            produced += 1000

    task = asyncio.ensure_future(produce())
    await asyncio.sleep(0.1)
    # The writer task holds one batch in a pending send and the queue fills to its bound;
    # the producer then waits instead of queueing the other ~10 MB.
    assert not task.done()
    assert produced <= 2 * 64 * 1024 + 1000
    send.gate.set()
    await asyncio.wait_for(task, 5)
    await writer.finish(b"end")
    body = b"".join(send.chunks)
    assert body == b"x" * 10_000_000 + b"end"
    assert len(send.chunks) < 10_000 // 8, "frames produced back to back must share sends"


async def test_a_failed_send_fails_the_producer() -> None:
    async def broken(message: MutableMapping[str, Any]) -> None:
        raise ConnectionResetError("gone")

    writer = BatchingSender(broken)

    async def produce() -> None:
        for _ in range(1000):
            await writer.write(b"y" * 1000)

    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(produce(), 5)
    assert writer.failed
