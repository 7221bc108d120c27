"""Turn a caller's request messages into body chunks, coalescing small frames.

A write per message is what limits small-message client streams: every chunk costs an
HTTP/1.1 chunk header and a socket write. Frames are gathered into chunks of up to 64 KiB:

* from a plain iterable, as fast as it yields (``coalesce``, which the sync client uses too);
* from an async iterable, by a producer task that runs ahead of the network: whatever it
  produced while the previous chunk was being written goes out as the next chunk. A message
  followed by a pause in the caller's stream is sent at once, so nothing waits for a batch to
  fill; at most 64 KiB of messages are taken from the caller before they can be sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable, Iterator
from typing import TypeVar

__all__ = ["CHUNK_LIMIT", "coalesce", "frames_from"]

CHUNK_LIMIT = 64 * 1024

T = TypeVar("T")


async def frames_from(
    messages: Iterable[T] | AsyncIterable[T], frame: Callable[[T], bytes]
) -> AsyncGenerator[bytes, None]:
    """Body chunks for ``messages``, each message framed by ``frame``."""
    if isinstance(messages, AsyncIterable):
        async for chunk in _from_async(messages, frame):
            yield chunk
        return
    for chunk in coalesce(map(frame, messages)):
        yield chunk


def coalesce(frames: Iterable[bytes]) -> Iterator[bytes]:
    """``frames`` joined into chunks of about ``CHUNK_LIMIT`` bytes, as fast as they come."""
    batch: list[bytes] = []
    size = 0
    for data in frames:
        batch.append(data)
        size += len(data)
        if size >= CHUNK_LIMIT:
            yield b"".join(batch)
            batch.clear()
            size = 0
    if batch:
        yield b"".join(batch)


async def _from_async(
    messages: AsyncIterable[T], frame: Callable[[T], bytes]
) -> AsyncGenerator[bytes, None]:
    frames: list[bytes] = []
    size = 0
    produced = asyncio.Event()
    space = asyncio.Event()
    done = False
    failure: BaseException | None = None

    async def produce() -> None:
        nonlocal size, done, failure
        try:
            async for message in messages:
                data = frame(message)
                frames.append(data)
                size += len(data)
                produced.set()
                if size >= CHUNK_LIMIT:
                    space.clear()
                    await space.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            failure = exc
        finally:
            done = True
            produced.set()

    producer = asyncio.ensure_future(produce())
    try:
        while True:
            if not frames and not done:
                produced.clear()
                await produced.wait()
            if frames:
                chunk = b"".join(frames) if len(frames) > 1 else frames[0]
                frames.clear()
                size = 0
                space.set()
                yield chunk
            elif done:
                if failure is not None:
                    raise failure
                return
    finally:
        producer.cancel()
