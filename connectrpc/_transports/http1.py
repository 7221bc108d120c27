"""A lean HTTP/1.1 client transport: asyncio protocols, httptools' parser, keep-alive pool.

aiohttp is a general-purpose client, and per request its machinery costs several times
what an RPC needs. This transport does only what Connect over HTTP/1.1 uses: one request
per connection at a time, a ``content-length`` body or a chunked streaming body, and a
response body read as it arrives (httptools removes any chunked framing). Idle connections
are kept per origin and reused.

Deadlines are timers, not tasks: when one passes, the connection is closed and the waiting
call fails with ``deadline_exceeded``. Reading pauses when more than 1 MiB of response body
is buffered, so a fast server cannot make a slow reader buffer without bound, and small body
chunks are merged as they arrive, so buffering costs about the bytes buffered. The response
head is bounded too (``max_header_bytes``, ``max_headers``), and interim ``1xx`` responses
(``100 Continue``, ``103 Early Hints``) are skipped, as RFC 9110 section 15.2 requires.

The wire rules (request head, chunked framing, the response parser and its limits) are in
``http1_core``, shared with the blocking ``SyncHTTP1Transport``; this module only moves
bytes with asyncio and keeps the asyncio pool.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import AsyncIterable, Iterable

from multidict import CIMultiDict

from connectrpc._core.code import Code
from connectrpc._core.error import ConnectError, deadline_exceeded
from connectrpc._transports.base import (
    AsyncTransport,
    HTTPRequest,
    Origin,
    TransportResponse,
)
from connectrpc._transports.http1_core import (
    LAST_CHUNK,
    HTTP1Settings,
    ResponseParser,
    chunk,
    connect_failed,
    encode_request,
)

__all__ = ["HTTP1Transport"]

_HIGH_WATER = 1024 * 1024
_MAX_IDLE_PER_ORIGIN = 64


class _Connection(ResponseParser, asyncio.Protocol):
    """One HTTP/1.1 connection, carrying one exchange at a time."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, max_header_bytes: int, max_headers: int
    ) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._paused_writing = False
        self._reading_paused = False
        super().__init__(max_header_bytes, max_headers, "HTTP1Transport")

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        error = self.feed(data)
        if error is not None:
            self.fail(error)
            return
        if self.chunks.size > _HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        error = self.on_close(exc, "connection")
        if error is not None:
            self._error = self._error or error
        self._wake()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # -- used by the transport -----------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, error: BaseException) -> None:
        """Abandon the exchange with ``error`` and close the connection."""
        if self._error is None:
            self._error = error
        self.abort()
        self._wake()

    def fail_deadline(self) -> None:
        self.fail(deadline_exceeded())

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    async def wait(self) -> None:
        """Wait for the next parser event (or a failure)."""
        if self._error is not None:
            raise self._error
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self._error is not None:
            raise self._error

    @property
    def buffered(self) -> int:
        """Response body bytes received and not yet taken."""
        return self.chunks.size

    def take_chunk(self) -> bytes:
        chunk = self.chunks.pop_first()
        if self._reading_paused and self.chunks.size <= _HIGH_WATER // 2 and self.transport:
            self._reading_paused = False
            self.transport.resume_reading()
        return chunk

    async def drain(self) -> None:
        if self._paused_writing and not self.closed:
            self._drain = self._loop.create_future()
            await self._drain
        if self.closed:
            raise self._error or ConnectError(Code.UNAVAILABLE, "connection closed")

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self._error is None

    def prepare(self) -> None:
        self._error = None
        self._reading_paused = False
        self.reset()


class _Response(TransportResponse):
    __slots__ = ("_conn", "_release", "_slot", "_timer", "_writer", "headers", "status")

    def __init__(
        self,
        conn: _Connection,
        release: HTTP1Transport,
        origin: Origin,
        timer: asyncio.TimerHandle | None,
        writer: asyncio.Task[None] | None,
        slot: asyncio.Semaphore,
    ) -> None:
        self._slot: asyncio.Semaphore | None = slot
        self._conn = conn
        self._release = (release, origin)
        self._timer = timer
        self._writer = writer
        self.status = conn.status
        self.headers = CIMultiDict(conn.headers)

    async def read(self) -> bytes:
        conn = self._conn
        while True:
            if conn.chunks:
                return conn.take_chunk()
            if conn.complete:
                return b""
            try:
                await conn.wait()
            except BaseException:
                conn.abort()
                raise

    async def close(self, *, abort: bool) -> None:
        if self._slot is not None:
            self._slot.release()
            self._slot = None
        if self._timer is not None:
            self._timer.cancel()
        writer = self._writer
        conn = self._conn
        if writer is not None and not writer.done():
            abort = True
            writer.cancel()
        if abort or not conn.reusable():
            conn.abort()
        else:
            transport, origin = self._release
            transport._put_idle(origin, conn)


class HTTP1Transport(HTTP1Settings, AsyncTransport):
    """A fast HTTP/1.1 transport with its own connection pool (needs ``httptools``:
    ``pip install connect-python[fast]``).

    ``ssl_context`` is used for ``https`` URLs (default: the system's trusted CAs). At most
    ``max_connections_per_origin`` exchanges run at once per origin; further calls wait for
    a connection to come free (their deadline still runs while they wait).

    A response head (status line and headers, with any interim ``1xx`` responses before it)
    larger than ``max_header_bytes``, or with more than ``max_headers`` header fields, fails
    the call with ``internal`` and closes the connection, so a broken or hostile server
    cannot make the client buffer headers without bound.
    """

    def _init_pool(self) -> None:
        self._slots: dict[Origin, asyncio.Semaphore] = {}
        self._idle: dict[Origin, list[_Connection]] = {}

    def _put_idle(self, origin: Origin, conn: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) < _MAX_IDLE_PER_ORIGIN:
            idle.append(conn)
        else:
            conn.abort()

    async def _connect(self, origin: Origin, deadline: float | None) -> tuple[_Connection, bool]:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.prepare()
                return conn, True
        loop = asyncio.get_running_loop()
        scheme, host, port = origin
        ssl: ssl_module.SSLContext | None = None
        if scheme == "https":
            ssl = self._ssl or ssl_module.create_default_context()
        max_bytes, max_headers = self._max_header_bytes, self._max_headers
        connecting = loop.create_connection(
            lambda: _Connection(loop, max_bytes, max_headers), host, port, ssl=ssl
        )
        try:
            if deadline is None:
                _, conn = await connecting
            else:
                _, conn = await asyncio.wait_for(connecting, max(deadline - loop.time(), 0))
        except asyncio.TimeoutError:
            raise deadline_exceeded() from None
        except OSError as exc:
            raise connect_failed(host, port, exc) from exc
        return conn, False

    async def send(self, request: HTTPRequest) -> TransportResponse:
        loop = asyncio.get_running_loop()
        origin, prefix = self._targets.split(request.url)
        body = request.body
        head, streaming = encode_request(request.method, prefix, request.headers, body)

        deadline = None if request.timeout is None else loop.time() + request.timeout
        slot = self._slots.get(origin)
        if slot is None:
            slot = self._slots[origin] = asyncio.Semaphore(self._max_connections)
        if deadline is None:
            await slot.acquire()
        else:
            try:
                await asyncio.wait_for(slot.acquire(), max(deadline - loop.time(), 0))
            except asyncio.TimeoutError:
                raise deadline_exceeded() from None
        try:
            return await self._exchange(origin, head, body, streaming, deadline, slot)
        except BaseException:
            slot.release()
            raise

    async def _exchange(
        self,
        origin: Origin,
        head: bytes,
        body: bytes | bytearray | AsyncIterable[bytes] | Iterable[bytes],
        streaming: bool,
        deadline: float | None,
        slot: asyncio.Semaphore,
    ) -> TransportResponse:
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None
        for attempt in (0, 1):
            conn, reused = await self._connect(origin, deadline)
            if deadline is not None:
                timer = loop.call_at(deadline, conn.fail_deadline)
            writer: asyncio.Task[None] | None = None
            try:
                assert conn.transport is not None
                conn.transport.write(head)
                if streaming:
                    assert isinstance(body, AsyncIterable)
                    writer = asyncio.ensure_future(_write_chunked(conn, body))
                while not conn.head_done:
                    await conn.wait()
            except BaseException as exc:
                if timer is not None:
                    timer.cancel()
                if writer is not None:
                    writer.cancel()
                conn.abort()
                # A reused keep-alive connection may have been closed by the server just
                # as we sent; a bytes request is safe to send again on a fresh one.
                retry = (
                    reused
                    and not streaming
                    and isinstance(exc, ConnectError)
                    and exc.code is Code.UNAVAILABLE
                )
                if retry and attempt == 0:
                    continue
                raise
            return _Response(conn, self, origin, timer, writer, slot)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.abort()
        self._idle.clear()


async def _write_chunked(conn: _Connection, body: AsyncIterable[bytes]) -> None:
    """Write ``body`` with chunked transfer coding. A failure of the connection is left for
    the reader to report; an exception from ``body`` itself (the caller's messages, or an
    interceptor's ``on_request``) fails the exchange with that exception, as it is."""
    transport = conn.transport
    assert transport is not None
    pieces = body.__aiter__()
    while True:
        try:
            piece = await pieces.__anext__()
        except StopAsyncIteration:
            break
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            conn.fail(exc)
            return
        if piece:
            transport.write(chunk(piece))
            try:
                await conn.drain()
            except ConnectError:
                return  # the connection failed; the reader reports it
    transport.write(LAST_CHUNK)
