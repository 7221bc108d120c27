"""A blocking HTTP/1.1 client transport: plain sockets over the shared HTTP/1.1 core.

The wire rules (request head, chunked framing, the response parser with its head limits
and ``1xx`` skipping) are ``http1_core``'s, the same as the asyncio ``HTTP1Transport``'s;
this module only moves bytes with blocking socket calls and keeps a thread-safe pool.

- One exchange at a time per connection (RFC 9112 section 9.3, without pipelining). A
  ``bytes`` body is sent with its head in one ``sendall``; an iterable body is sent with
  chunked transfer coding, a chunk per piece as the iterable yields it, and the response
  is read once the body is sent (Connect over HTTP/1.1 is half duplex).
- Several threads may share a transport. Per origin, at most ``max_connections_per_origin``
  exchanges run at once (a caller waits for a slot until its deadline) and idle keep-alive
  connections are reused. A connection is reused only after its response was read to the
  end, with no error, abort or cancellation on the way.
- Deadlines are socket timeouts: every connect, send and receive waits at most for the
  time left, so a stalled server cannot hold a call past its deadline. Then the socket is
  closed and the call fails with ``deadline_exceeded``. No thread or timer is involved.
- Cancellation comes from another thread (``request.cancel``, or ``close(abort=True)`` on
  the response while a ``read`` blocks). It shuts the socket down, which makes a blocked
  send or receive return at once; the exchange then fails with ``canceled``. Connecting and
  waiting for a pool slot are not interrupted: the call fails once they end.
- Network failures are ``unavailable`` (naming the peer and the cause), a malformed or
  oversized response ``internal``, as on the asyncio side. A request on a reused connection
  that the server had closed meanwhile is sent again on a new one when its body is bytes;
  a streamed body is only sent on a reused connection that still looks open.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import ssl as ssl_module
import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from multidict import CIMultiDict

from connectrpc._core.code import Code
from connectrpc._core.error import ConnectError, canceled, deadline_exceeded
from connectrpc._transports import http1_core as core
from connectrpc._transports.base import (
    HTTPRequest,
    Origin,
    SyncTransport,
    SyncTransportResponse,
)
from connectrpc._transports.cancel import CancelToken

__all__ = ["SyncHTTP1Transport"]

_READ_SIZE = 64 * 1024
_A = TypeVar("_A")
_R = TypeVar("_R")
_MAX_IDLE_PER_ORIGIN = 64
_monotonic = time.monotonic


def _nothing() -> None:
    return None


def _time_left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` (None: no deadline); ``TimeoutError`` once it has passed."""
    if deadline is None:
        return None
    left = deadline - _monotonic()
    if left <= 0:
        raise TimeoutError
    return left


class _Connection(core.ResponseParser):
    """One socket carrying one exchange at a time, its responses parsed by the core.

    Another thread may ``interrupt`` it. The owning thread marks each socket call ``busy``
    and checks ``interrupted`` before and after it; an interrupting thread shuts the socket
    down (waking a blocked call) and closes it only when no call is in progress, so a socket
    is never closed under a call that could then use a reused descriptor.
    """

    def __init__(
        self, sock: socket.socket, peer: str, max_header_bytes: int, max_headers: int
    ) -> None:
        super().__init__(max_header_bytes, max_headers, "SyncHTTP1Transport")
        self.sock = sock
        self.peer = peer
        self.open = True
        self.busy = False
        self.interrupted: ConnectError | None = None
        self.exchange = 0  # counts the exchanges begun, so a late interrupt spares the next
        self._timeout = sock.gettimeout()  # as last set: set again only when it changes
        self._lock = threading.Lock()  # orders close() between the owner and an interrupter

    def _arm(self, deadline: float | None) -> None:
        """Bound the next socket call by ``deadline``; raises ``TimeoutError`` if it passed."""
        left = _time_left(deadline)
        if left is not None or self._timeout is not None:
            self.sock.settimeout(left)
            self._timeout = left

    def send(self, data: bytes, deadline: float | None) -> None:
        self._socket_call(self.sock.sendall, data, deadline, "failed while sending the request")

    def receive(self, deadline: float | None) -> None:
        """Receive and parse the next bytes; raises the error that ends the exchange (the
        connection is closed by then)."""
        doing = "closed before the response was complete"
        data = self._socket_call(self.sock.recv, _READ_SIZE, deadline, doing)
        if data:
            error = self.feed(data)
        else:
            error = self.on_close(None, f"connection to {self.peer}")
            self.close()
        if error is not None:
            self.close()
            raise error

    def _socket_call(
        self, call: Callable[[_A], _R], arg: _A, deadline: float | None, doing: str
    ) -> _R:
        """``call(arg)`` bounded by ``deadline``, unless another thread interrupted the
        exchange (before or during it); any failure closes the connection."""
        self.busy = True
        try:
            if self.interrupted is None:
                self._arm(deadline)
                result = call(arg)
                if self.interrupted is None:
                    return result
        except OSError as exc:
            self.close()
            raise self._failed(exc, doing) from exc
        finally:
            self.busy = False
        self.close()
        raise self.interrupted or canceled()

    def _failed(self, exc: OSError, doing: str) -> ConnectError:
        """The error a failed socket call ends the exchange with."""
        if self.interrupted is not None:
            return self.interrupted
        if isinstance(exc, TimeoutError):
            return deadline_exceeded()
        return ConnectError(Code.UNAVAILABLE, f"connection to {self.peer} {doing}: {exc}")

    def begin(self, probe: bool) -> bool:
        """Start the next exchange; False if the connection cannot carry it (closed or
        interrupted, or with ``probe``, closed by the peer while idle)."""
        self.reset()
        with self._lock:
            self.exchange += 1
            usable = self.open and self.interrupted is None
        return usable and not (probe and self.closed_while_idle())

    def interrupt(self, exchange: int, error: ConnectError) -> None:
        """From any thread: end ``exchange`` with ``error`` at once, if it is still the
        one in progress (a callback may run late, when the connection serves another)."""
        with self._lock:
            if exchange != self.exchange:
                return
            if self.interrupted is None:
                self.interrupted = error
            if self.open:
                # The plain socket's shutdown, also for TLS: no TLS state is touched from
                # this thread. An error means the socket is already disconnected.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        if not self.busy:
            self.close()

    def cancel(self, exchange: int) -> None:
        """``CancelToken`` callback."""
        self.interrupt(exchange, canceled())

    def close(self) -> None:
        with self._lock:
            if self.open:
                self.open = False
                self.sock.close()

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and self.open and self.interrupted is None

    def closed_while_idle(self) -> bool:
        """Whether the peer closed this idle connection (or sent what nobody asked for)."""
        self.sock.settimeout(0.0)
        self._timeout = 0.0
        try:
            socket.socket.recv(self.sock, 1, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        except OSError:
            return True
        return True


class _Pool:
    """The connections to one origin: at most ``limit`` in use, idle ones kept for reuse."""

    __slots__ = ("active", "closed", "idle", "limit", "lock", "ready", "waiting")

    def __init__(self, limit: int) -> None:
        self.lock = threading.Lock()
        self.ready = threading.Condition(self.lock)
        self.idle: list[_Connection] = []
        self.limit = limit
        self.active = 0
        self.waiting = 0
        self.closed = False

    def acquire(self, deadline: float | None) -> _Connection | None:
        """Take a slot, waiting until ``deadline`` for one, and an idle connection if any."""
        with self.lock:
            while self.active >= self.limit:
                try:
                    left = _time_left(deadline)
                except TimeoutError:
                    raise deadline_exceeded() from None
                self.waiting += 1
                try:
                    self.ready.wait(left)
                finally:
                    self.waiting -= 1
            self.active += 1
            return self.idle.pop() if self.idle else None

    def release(self, conn: _Connection | None) -> None:
        """Give the slot back, with ``conn`` to keep idle (None: it was discarded)."""
        with self.lock:
            self.active -= 1
            if conn is not None and not self.closed and len(self.idle) < _MAX_IDLE_PER_ORIGIN:
                self.idle.append(conn)
                conn = None
            if self.waiting:
                self.ready.notify()
        if conn is not None:
            conn.close()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()


class _Response(SyncTransportResponse):
    __slots__ = (
        "_conn",
        "_deadline",
        "_done",
        "_error",
        "_exchange",
        "_pool",
        "_unregister",
        "headers",
        "status",
    )

    def __init__(
        self,
        conn: _Connection,
        pool: _Pool,
        deadline: float | None,
        unregister: Callable[[], None],
    ) -> None:
        self._conn = conn
        self._pool = pool
        self._deadline = deadline
        self._unregister = unregister
        self._exchange = conn.exchange
        self._done = False
        self._error: BaseException | None = None  # why the exchange ended early, if it did
        self.status = conn.status
        self.headers = CIMultiDict(conn.headers)

    def read(self) -> bytes:
        if self._done:
            # The connection may carry another exchange by now: never touch it again.
            if self._error is None:
                return b""
            raise self._error
        conn = self._conn
        try:
            while True:
                if conn.chunks:
                    return conn.chunks.pop_first()
                if conn.complete:
                    self._finish(conn.reusable(), None)
                    return b""
                conn.receive(self._deadline)
        except BaseException as exc:
            self._finish(False, exc)
            raise

    def close(self, *, abort: bool) -> None:
        if self._done:
            return
        conn = self._conn
        if not abort and conn.reusable():
            self._finish(True, None)  # complete: any body not read is dropped
            return
        error = canceled()
        conn.interrupt(self._exchange, error)  # wakes a read blocked in another thread
        self._finish(False, error)

    def _finish(self, keep: bool, error: BaseException | None) -> None:
        """End the exchange once, from whichever thread gets here first."""
        pool = self._pool
        with pool.lock:
            if self._done:
                return
            self._done = True
            self._error = error
        self._unregister()
        conn = self._conn
        if not keep and not conn.busy:
            conn.close()
        pool.release(conn if keep else None)


class SyncHTTP1Transport(core.HTTP1Settings, SyncTransport):
    """A blocking HTTP/1.1 transport with its own thread-safe connection pool (needs
    ``httptools``: ``pip install connect-python[fast]``). Use it from any number of
    threads; ``close()`` it (or use it as a context manager) to close idle connections.

    ``ssl_context`` is used for ``https`` URLs (default: the system's trusted CAs); give
    one to trust other CAs or to present a client certificate. At most
    ``max_connections_per_origin`` exchanges run at once per origin; further calls wait
    for a connection to come free (their deadline still runs while they wait).

    A response head (status line and headers, with any interim ``1xx`` responses before it)
    larger than ``max_header_bytes``, or with more than ``max_headers`` header fields, fails
    the call with ``internal`` and closes the connection.
    """

    def _init_pool(self) -> None:
        self._pools: dict[Origin, _Pool] = {}
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> SyncHTTP1Transport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the idle connections; connections in use are closed when their exchange
        ends. The transport cannot send afterwards."""
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
        for pool in pools:
            pool.close()

    def _pool(self, origin: Origin) -> _Pool:
        with self._lock:
            if self._closed:
                raise RuntimeError("SyncHTTP1Transport is closed")
            pool = self._pools.get(origin)
            if pool is None:
                pool = self._pools[origin] = _Pool(self._max_connections)
            return pool

    def send(self, request: HTTPRequest) -> SyncTransportResponse:
        origin, prefix = self._targets.split(request.url)
        body = request.body
        head, streaming = core.encode_request(request.method, prefix, request.headers, body)
        deadline = None if request.timeout is None else _monotonic() + request.timeout
        token = request.cancel
        if token is not None and token.cancelled:
            raise canceled()
        pool = self._pools.get(origin)
        if pool is None or pool.closed:
            pool = self._pool(origin)
        upload: Iterable[bytes] | None = None
        if streaming:
            if isinstance(body, (bytes, bytearray)) or not isinstance(body, Iterable):
                raise TypeError("SyncHTTP1Transport sends bytes or an Iterable[bytes] body")
            upload = body
        idle = pool.acquire(deadline)
        try:
            conn, unregister = self._exchange(origin, idle, head, upload, deadline, token)
        except BaseException:
            pool.release(None)
            raise
        return _Response(conn, pool, deadline, unregister)

    def _exchange(
        self,
        origin: Origin,
        conn: _Connection | None,
        head: bytes,
        upload: Iterable[bytes] | None,
        deadline: float | None,
        token: CancelToken | None,
    ) -> tuple[_Connection, Callable[[], None]]:
        """Send the request and read the response head, on ``conn`` (an idle connection)
        or a new one. A reused connection the server closed meanwhile fails with
        ``unavailable`` as it is used; a ``bytes`` request is then sent again, once."""
        retry = conn is not None and upload is None
        if conn is not None and not conn.begin(probe=upload is not None):
            conn.close()
            conn = None
        if conn is None:
            conn = self._connect(origin, deadline)
            conn.begin(probe=False)
        unregister = _nothing
        if token is not None:
            unregister = token.on_cancel(functools.partial(conn.cancel, conn.exchange))
        try:
            conn.send(head, deadline)
            if upload is not None:
                for piece in upload:
                    if piece:
                        conn.send(core.chunk(piece), deadline)
                conn.send(core.LAST_CHUNK, deadline)
            while not conn.head_done:
                conn.receive(deadline)
        except ConnectError as exc:
            unregister()
            conn.close()
            if retry and exc.code is Code.UNAVAILABLE:
                return self._exchange(origin, None, head, None, deadline, token)
            raise
        except BaseException:
            unregister()
            conn.close()
            raise
        return conn, unregister

    def _connect(self, origin: Origin, deadline: float | None) -> _Connection:
        scheme, host, port = origin
        try:
            sock = socket.create_connection((host, port), _time_left(deadline))
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if scheme == "https":
                    sock.settimeout(_time_left(deadline))
                    sock = self._ssl_context().wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
        except TimeoutError:
            raise deadline_exceeded() from None
        except OSError as exc:
            raise core.connect_failed(host, port, exc) from exc
        return _Connection(sock, f"{host}:{port}", self._max_header_bytes, self._max_headers)

    def _ssl_context(self) -> ssl_module.SSLContext:
        if self._ssl is None:
            self._ssl = ssl_module.create_default_context()
        return self._ssl
