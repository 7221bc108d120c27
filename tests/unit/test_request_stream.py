"""Request body chunking: order kept, small frames coalesced, nothing held back by a pause."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from connectrpc._client.request_stream import CHUNK_LIMIT, frames_from


def frame(n: int) -> bytes:
    return n.to_bytes(4, "big")


async def collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [c async for c in chunks]


async def test_sync_iterable_is_coalesced_in_order() -> None:
    chunks = await collect(frames_from(range(50_000), frame))
    assert b"".join(chunks) == b"".join(frame(i) for i in range(50_000))
    assert all(len(c) <= CHUNK_LIMIT + 4 for c in chunks)
    assert len(chunks) == -(-50_000 * 4 // CHUNK_LIMIT)


async def test_async_iterable_that_never_pauses_is_coalesced() -> None:
    async def gen() -> AsyncIterator[int]:
        for i in range(10_000):
            yield i

    chunks = await collect(frames_from(gen(), frame))
    assert b"".join(chunks) == b"".join(frame(i) for i in range(10_000))
    assert len(chunks) < 10


async def test_a_pause_flushes_what_was_produced() -> None:
    release = asyncio.Event()

    async def gen() -> AsyncIterator[int]:
        yield 1
        yield 2
        await release.wait()
        yield 3

    chunks = frames_from(gen(), frame)
    first = await asyncio.wait_for(chunks.__anext__(), 1)
    assert first == frame(1) + frame(2)
    release.set()
    assert await collect(chunks) == [frame(3)]


async def test_errors_from_the_caller_stream_propagate() -> None:
    async def gen() -> AsyncIterator[int]:
        yield 1
        raise KeyError("boom")

    with pytest.raises(KeyError):
        await collect(frames_from(gen(), frame))


async def test_closing_the_body_stops_the_producer() -> None:
    stopped = asyncio.Event()

    async def gen() -> AsyncIterator[int]:
        try:
            while True:
                yield 0
                await asyncio.sleep(0.001)
        finally:
            stopped.set()

    chunks = frames_from(gen(), frame)
    await chunks.__anext__()
    await chunks.aclose()
    await asyncio.wait_for(stopped.wait(), 1)
