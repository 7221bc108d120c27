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
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import AsyncIterable

from multidict import CIMultiDict

from connectrpc._aio.deadline import deadline_exceeded
from connectrpc._core.buffer import ChunkBuffer
from connectrpc._core.code import Code
from connectrpc._core.error import ConnectError
from connectrpc._transports.base import (
    AsyncTransport,
    HTTPRequest,
    Origin,
    TransportResponse,
    split_url,
)

__all__ = ["HTTP1Transport"]

_HIGH_WATER = 1024 * 1024
_MAX_IDLE_PER_ORIGIN = 64


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, carrying one exchange at a time."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, max_header_bytes: int, max_headers: int
    ) -> None:
        import httptools

        self._loop = loop
        self._max_header_bytes = max_header_bytes
        self._max_headers = max_headers
        self._parser = httptools.HttpResponseParser(self)
        self._parse_error = httptools.HttpParserError
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._paused_writing = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.chunks = ChunkBuffer()  # small pieces merged: it costs about its size
        self._reading_paused = False
        self._framed = False  # body length known (content-length or chunked)
        self._head_bytes = 0  # bytes received before the final response head was complete
        self._interim = False  # the message being parsed is a 1xx interim response
        self._head_error: str | None = None

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        in_head = not self.head_done
        if in_head:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except self._parse_error as exc:
            self.fail(ConnectError(Code.INTERNAL, f"invalid HTTP response: {exc}"))
            return
        # Every byte received while the head is still incomplete belongs to the head (and to
        # interim responses before it), so this bounds the head exactly, however it is split.
        if in_head and not self.head_done and self._head_bytes > self._max_header_bytes:
            self._head_error = (
                f"response head is larger than {self._max_header_bytes} bytes "
                "(HTTP1Transport max_header_bytes)"
            )
        if self._head_error is not None:
            self.fail(ConnectError(Code.INTERNAL, f"invalid HTTP response: {self._head_error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.head_done and not self.complete and not self._framed and exc is None:
            self.complete = True  # a body delimited by the connection closing
        elif not self.complete:
            self._error = self._error or ConnectError(
                Code.UNAVAILABLE,
                f"connection closed before the response was complete: {exc or 'EOF'}",
            )
        self._wake()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # -- httptools callbacks -----------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= self._max_headers:
            self._head_error = (
                f"response has more than {self._max_headers} header fields "
                "(HTTP1Transport max_headers)"
            )
            return
        key = name.decode("latin-1")
        self.headers.append((key, value.decode("latin-1")))
        lower = key.lower()
        if lower == "content-length" or (
            lower == "transfer-encoding" and b"chunked" in value.lower()
        ):
            self._framed = True

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        # httptools reads any three digits. RFC 9110 (15) defines 1xx to 5xx, but a status it
        # does not know must be read by its class or as unknown, so only 000-099 is invalid.
        if not 100 <= status <= 999:
            self._head_error = f"invalid status code {status:03d}"
            return
        if 100 <= status < 200 and status != 101:
            # An interim response: the final one follows on the same connection.
            self._interim = True
            self.headers = []
            self._framed = False
            return
        self.status = status
        self.keep_alive = self._parser.should_keep_alive()
        self.head_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        if self.chunks.size > _HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.complete = True
        self._wake()

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
        self._reset()


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


class HTTP1Transport(AsyncTransport):
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

    def __init__(
        self,
        *,
        ssl_context: ssl_module.SSLContext | None = None,
        max_connections_per_origin: int = 100,
        max_header_bytes: int = 64 * 1024,
        max_headers: int = 256,
    ) -> None:
        import httptools  # noqa: F401 - fail here, with the import error, not per request

        if max_connections_per_origin < 1:
            raise ValueError("max_connections_per_origin must be at least 1")
        if max_header_bytes < 1 or max_headers < 1:
            raise ValueError("max_header_bytes and max_headers must be at least 1")
        self._max_header_bytes = max_header_bytes
        self._max_headers = max_headers
        self._ssl = ssl_context
        self._max_connections = max_connections_per_origin
        self._slots: dict[Origin, asyncio.Semaphore] = {}
        self._idle: dict[Origin, list[_Connection]] = {}
        self._urls: dict[str, tuple[Origin, bytes]] = {}

    def _split(self, url: str) -> tuple[Origin, bytes]:
        cached = self._urls.get(url)
        if cached is not None:
            return cached
        origin, target, host = split_url(url)
        prefix = f" {target} HTTP/1.1\r\nhost: {host}\r\n".encode("latin-1")
        if len(self._urls) < 4096:
            self._urls[url] = (origin, prefix)
        return origin, prefix

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
            raise ConnectError(Code.UNAVAILABLE, f"cannot connect to {host}:{port}: {exc}") from exc
        return conn, False

    async def send(self, request: HTTPRequest) -> TransportResponse:
        loop = asyncio.get_running_loop()
        origin, prefix = self._split(request.url)
        lines = [request.method.encode("latin-1"), prefix]
        for key, value in request.headers.items():
            if "\n" in value or "\r" in value or "\n" in key or "\r" in key:
                raise ValueError(f"header {key!r} contains a line break")
            lines.append(f"{key}: {value}\r\n".encode("latin-1"))
        body = request.body
        streaming = not isinstance(body, (bytes, bytearray))
        if streaming:
            lines.append(b"transfer-encoding: chunked\r\n\r\n")
        else:
            assert isinstance(body, (bytes, bytearray))
            if body or request.method != "GET":
                lines.append(b"content-length: %d\r\n" % len(body))
            lines.append(b"\r\n")
            lines.append(bytes(body))
        head = b"".join(lines)

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
        body: bytes | bytearray | AsyncIterable[bytes],
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
    chunks = body.__aiter__()
    while True:
        try:
            chunk = await chunks.__anext__()
        except StopAsyncIteration:
            break
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            conn.fail(exc)
            return
        if chunk:
            transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            try:
                await conn.drain()
            except ConnectError:
                return  # the connection failed; the reader reports it
    transport.write(b"0\r\n\r\n")
