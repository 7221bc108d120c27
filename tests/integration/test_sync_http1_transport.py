"""``SyncHTTP1Transport`` against scripted raw-socket servers on 127.0.0.1.

Each server runs a script per accepted connection in a thread of its own, so a test says
exactly which bytes the client gets and when (including never), and sees exactly what
the client sent. Calls that could hang are bounded by their own deadline or by the test's
assertions on elapsed time.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType

import pytest
import trustme
from multidict import CIMultiDict

from connectrpc._transports.base import HTTPRequest, SyncTransportResponse
from connectrpc._transports.cancel import CancelToken
from connectrpc._transports.sync_http1 import SyncHTTP1Transport
from connectrpc.errors import Code, ConnectError

Script = Callable[[socket.socket], None]

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: text/plain\r\n\r\nhello"


class Server:
    """Runs ``script`` on each connection accepted on 127.0.0.1, each in its own thread,
    and closes the connection when the script returns; counts the connections. Leaving the ``with`` block shuts every connection down, so
    scripts blocked on the client return, and joins all threads."""

    def __init__(self, script: Script, context: ssl.SSLContext | None = None) -> None:
        self._script = script
        self._context = context
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self.url = f"{'https' if context else 'http'}://127.0.0.1:{self.port}/svc/Method"
        self.accepted = 0
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept)

    def __enter__(self) -> Server:
        self._acceptor.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._acceptor.join()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5)
        for conn in self._conns:
            conn.close()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            self.accepted += 1
            self._conns.append(conn)
            thread = threading.Thread(target=self._run, args=(conn,))
            self._threads.append(thread)
            thread.start()

    def _run(self, conn: socket.socket) -> None:
        """Runs the script; the connection closes when it returns (or the client left)."""
        with contextlib.suppress(OSError, EOFError):
            if self._context is not None:
                conn = self._context.wrap_socket(conn, server_side=True)
                self._conns.append(conn)
            self._script(conn)
        conn.close()


class Reader:
    """Reads HTTP/1.1 requests off a server-side socket."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = b""

    def _more(self) -> None:
        data = self.conn.recv(65536)
        if not data:
            raise EOFError
        self.buffer += data

    def line(self, end: bytes = b"\r\n") -> bytes:
        while end not in self.buffer:
            self._more()
        line, self.buffer = self.buffer.split(end, 1)
        return line

    def exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._more()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def head(self) -> dict[str, str]:
        """The next request head: its fields by lower-case name, the request line as ``""``."""
        lines = self.line(b"\r\n\r\n").decode().split("\r\n")
        fields = {"": lines[0]}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            fields[name.lower()] = value.strip()
        return fields

    def chunks(self) -> Iterator[bytes]:
        """The pieces of a chunked body, as each arrives."""
        while True:
            size = int(self.line(), 16)
            if size == 0:
                self.line()
                return
            yield self.exactly(size)
            self.line()

    def request(self) -> tuple[dict[str, str], bytes]:
        head = self.head()
        if head.get("transfer-encoding") == "chunked":
            return head, b"".join(self.chunks())
        return head, self.exactly(int(head.get("content-length", "0")))


def _serve_ok(conn: socket.socket) -> None:
    reader = Reader(conn)
    while True:
        reader.request()
        conn.sendall(OK)


def _wait_eof(conn: socket.socket) -> None:
    """Until the client closes the connection, or at most 3 s (then the script fails, and
    the connection closes, so a client that kept waiting fails rather than hangs)."""
    conn.settimeout(3)
    while conn.recv(65536):
        pass


def _request(
    url: str,
    body: bytes | Iterator[bytes] = b"hi",
    timeout: float | None = 5.0,
    cancel: CancelToken | None = None,
) -> HTTPRequest:
    headers = CIMultiDict({"content-type": "application/proto"})
    return HTTPRequest("POST", url, headers, body, timeout, cancel)


def _read_all(response: SyncTransportResponse) -> bytes:
    body = b""
    while chunk := response.read():
        body += chunk
    response.close(abort=False)
    return body


def _call(
    transport: SyncHTTP1Transport,
    url: str,
    body: bytes | Iterator[bytes] = b"hi",
    timeout: float | None = 5.0,
) -> bytes:
    return _read_all(transport.send(_request(url, body, timeout)))


def _error(fn: Callable[[], object]) -> tuple[ConnectError, float]:
    """The ``ConnectError`` ``fn`` raises, and how long it took."""
    start = time.monotonic()
    with pytest.raises(ConnectError) as info:
        fn()
    return info.value, time.monotonic() - start


# --- bodies ------------------------------------------------------------------------------


def test_content_length_response_and_request() -> None:
    seen: list[tuple[dict[str, str], bytes]] = []

    def script(conn: socket.socket) -> None:
        seen.append(Reader(conn).request())
        conn.sendall(OK)

    with Server(script) as server, SyncHTTP1Transport() as transport:
        response = transport.send(_request(server.url, b"payload"))
        assert response.status == 200
        assert response.headers["content-type"] == "text/plain"
        assert _read_all(response) == b"hello"
        assert response.trailers() is None
    head, body = seen[0]
    assert head[""] == "POST /svc/Method HTTP/1.1"
    assert head["host"] == f"127.0.0.1:{server.port}"
    assert head["content-length"] == "7"
    assert body == b"payload"


def test_chunked_response_is_handed_over_as_parsed() -> None:
    more = threading.Event()

    def script(conn: socket.socket) -> None:
        Reader(conn).request()
        conn.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
        more.wait(5)
        conn.sendall(b"2\r\nde\r\n0\r\n\r\n")

    with Server(script) as server, SyncHTTP1Transport() as transport:
        response = transport.send(_request(server.url))
        assert response.read() == b"abc"  # before the server sends the rest
        more.set()
        assert response.read() == b"de"
        assert response.read() == b""
        response.close(abort=False)


def test_body_delimited_by_close_is_read_and_the_connection_not_reused() -> None:
    def script(conn: socket.socket) -> None:
        Reader(conn).request()
        conn.sendall(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")
        conn.shutdown(socket.SHUT_WR)

    with Server(script) as server, SyncHTTP1Transport() as transport:
        assert _call(transport, server.url) == b"until the end"
        assert _call(transport, server.url) == b"until the end"
    assert server.accepted == 2


def test_chunked_upload_sends_each_piece_as_it_is_yielded() -> None:
    first = threading.Event()
    got: list[bytes] = []
    heads: list[dict[str, str]] = []

    def script(conn: socket.socket) -> None:
        reader = Reader(conn)
        heads.append(reader.head())
        for piece in reader.chunks():
            got.append(piece)
            first.set()
        conn.sendall(OK)

    def body() -> Iterator[bytes]:
        yield b"one"
        # Only arrives if the first piece was sent without waiting for more.
        assert first.wait(5)
        yield b""
        yield b"two"

    with Server(script) as server, SyncHTTP1Transport() as transport:
        assert _call(transport, server.url, body=body()) == b"hello"
    assert heads[0]["transfer-encoding"] == "chunked"
    assert "content-length" not in heads[0]
    assert got == [b"one", b"two"]


def test_upload_iterable_that_raises_aborts_and_reraises() -> None:
    ends: list[str] = []

    def script(conn: socket.socket) -> None:
        reader = Reader(conn)
        reader.head()
        try:
            list(reader.chunks())
        except EOFError:
            ends.append("eof")
            return
        ends.append("complete")
        conn.sendall(OK)
        _serve_ok(conn)

    def body() -> Iterator[bytes]:
        yield b"one"
        raise LookupError("the caller's own failure")

    with Server(script) as server, SyncHTTP1Transport() as transport:
        with pytest.raises(LookupError, match="own failure"):
            transport.send(_request(server.url, body=body()))
        assert _call(transport, server.url, body=iter([b"x"])) == b"hello"
    assert sorted(ends) == ["complete", "eof"]
    assert server.accepted == 2


def test_interim_responses_are_skipped() -> None:
    def script(conn: socket.socket) -> None:
        Reader(conn).request()
        conn.sendall(
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>\r\n\r\n" + OK
        )

    with Server(script) as server, SyncHTTP1Transport() as transport:
        response = transport.send(_request(server.url))
        assert response.status == 200
        assert "link" not in response.headers
        assert _read_all(response) == b"hello"


# --- the pool ------------------------------------------------------------------------------


def test_keep_alive_connection_is_reused() -> None:
    peers: list[tuple[str, int]] = []

    def script(conn: socket.socket) -> None:
        peers.append(conn.getpeername())
        _serve_ok(conn)

    with Server(script) as server, SyncHTTP1Transport() as transport:
        for _ in range(5):
            assert _call(transport, server.url) == b"hello"
        assert _call(transport, server.url, body=iter([b"streamed"])) == b"hello"
    assert server.accepted == 1
    assert len(peers) == 1


def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    def script(conn: socket.socket) -> None:
        Reader(conn).request()
        conn.sendall(OK)  # keep-alive, but the server closes it right after

    with Server(script) as server, SyncHTTP1Transport() as transport:
        assert _call(transport, server.url) == b"hello"
        time.sleep(0.1)
        assert _call(transport, server.url) == b"hello"  # bytes body: sent again
        time.sleep(0.1)
        assert _call(transport, server.url, body=iter([b"x"])) == b"hello"
    assert server.accepted == 3


def test_pool_bounds_connections_per_origin_across_threads() -> None:
    lock = threading.Lock()
    active = [0, 0]  # now, most

    def script(conn: socket.socket) -> None:
        reader = Reader(conn)
        while True:
            reader.request()
            with lock:
                active[0] += 1
                active[1] = max(active)
            time.sleep(0.05)
            with lock:
                active[0] -= 1
            conn.sendall(OK)

    errors: list[BaseException] = []
    with Server(script) as server, SyncHTTP1Transport(max_connections_per_origin=2) as transport:

        def worker() -> None:
            try:
                for _ in range(3):
                    assert _call(transport, server.url) == b"hello"
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert errors == []
    assert active[1] == 2
    assert server.accepted == 2


def test_waiting_for_a_pool_slot_respects_the_deadline() -> None:
    with Server(_wait_eof) as server, SyncHTTP1Transport(max_connections_per_origin=1) as t:
        first = threading.Thread(target=lambda: _error(lambda: _call(t, server.url, timeout=1)))
        first.start()
        time.sleep(0.1)
        err, took = _error(lambda: t.send(_request(server.url, timeout=0.2)))
        first.join()
    assert err.code is Code.DEADLINE_EXCEEDED
    assert took < 0.6


# --- deadlines -----------------------------------------------------------------------------


def test_deadline_when_the_server_stalls_before_the_head() -> None:
    closed = threading.Event()

    def script(conn: socket.socket) -> None:
        Reader(conn).request()
        _wait_eof(conn)
        closed.set()

    with Server(script) as server, SyncHTTP1Transport() as transport:
        err, took = _error(lambda: transport.send(_request(server.url, timeout=0.3)))
        assert err.code is Code.DEADLINE_EXCEEDED
        assert 0.25 < took < 0.8
        assert closed.wait(2)  # the client closed its socket


def test_deadline_when_the_server_stalls_mid_body() -> None:
    closed = threading.Event()

    def script(conn: socket.socket) -> None:
        Reader(conn).request()
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        _wait_eof(conn)
        closed.set()

    with Server(script) as server, SyncHTTP1Transport() as transport:
        response = transport.send(_request(server.url, timeout=0.3))
        assert response.read() == b"abc"
        err, took = _error(response.read)
        response.close(abort=True)
        assert err.code is Code.DEADLINE_EXCEEDED
        assert took < 0.6
        assert closed.wait(2)
        # The next call needs a new connection.
        response = transport.send(_request(server.url, timeout=0.3))
        response.close(abort=True)
    assert server.accepted == 2


# --- cancellation ----------------------------------------------------------------------------


def _later(seconds: float, fn: Callable[[], None]) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        fn()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_cancel_token_interrupts_a_blocked_read() -> None:
    def script(conn: socket.socket) -> None:
        Reader(conn).request()
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        _wait_eof(conn)

    token = CancelToken()
    with Server(script) as server, SyncHTTP1Transport() as transport:
        response = transport.send(_request(server.url, timeout=3, cancel=token))
        assert response.read() == b"abc"
        canceller = _later(0.1, token.cancel)
        err, took = _error(response.read)
        canceller.join()
        response.close(abort=True)
        assert err.code is Code.CANCELED
        assert took < 1
        # Cancelled already: fails at once, without a connection.
        err, _ = _error(lambda: transport.send(_request(server.url, cancel=token)))
        assert err.code is Code.CANCELED
    assert server.accepted == 1


def test_cancel_token_interrupts_waiting_for_the_head() -> None:
    token = CancelToken()
    with Server(_wait_eof) as server, SyncHTTP1Transport() as transport:
        canceller = _later(0.1, token.cancel)
        err, took = _error(lambda: transport.send(_request(server.url, timeout=3, cancel=token)))
        canceller.join()
    assert err.code is Code.CANCELED
    assert took < 1


def test_close_with_abort_from_another_thread_interrupts_a_blocked_read() -> None:
    def script(conn: socket.socket) -> None:
        Reader(conn).request()
        conn.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
        _wait_eof(conn)

    with Server(script) as server, SyncHTTP1Transport() as transport:
        response = transport.send(_request(server.url, timeout=3))
        assert response.read() == b"abc"
        closer = _later(0.1, lambda: response.close(abort=True))
        err, took = _error(response.read)
        closer.join()
        assert err.code is Code.CANCELED
        assert took < 1
        err, _ = _error(response.read)  # stays failed
        assert err.code is Code.CANCELED
        response = transport.send(_request(server.url, timeout=3))
        response.close(abort=True)
    assert server.accepted == 2


# --- failures ------------------------------------------------------------------------------


def test_server_closing_mid_body_is_unavailable() -> None:
    def script(conn: socket.socket) -> None:
        Reader(conn).request()
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")

    with Server(script) as server, SyncHTTP1Transport() as transport:
        response = transport.send(_request(server.url))
        err, _ = _error(lambda: _read_all(response))
    assert err.code is Code.UNAVAILABLE
    assert f"127.0.0.1:{server.port}" in err.message
    assert "closed before the response was complete: EOF" in err.message


def test_connection_refused_is_unavailable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    with SyncHTTP1Transport() as transport:
        err, _ = _error(lambda: transport.send(_request(f"http://127.0.0.1:{port}/x")))
    assert err.code is Code.UNAVAILABLE
    assert f"cannot connect to 127.0.0.1:{port}" in err.message


def test_response_head_too_large_is_internal() -> None:
    def script(conn: socket.socket) -> None:
        Reader(conn).request()
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + b"x-filler: " + b"y" * 8000 + b"\r\n")
        _wait_eof(conn)

    with Server(script) as server, SyncHTTP1Transport(max_header_bytes=4096) as transport:
        err, _ = _error(lambda: transport.send(_request(server.url)))
    assert err.code is Code.INTERNAL
    assert "SyncHTTP1Transport max_header_bytes" in err.message


def test_too_many_header_fields_is_internal() -> None:
    def script(conn: socket.socket) -> None:
        reader = Reader(conn)
        while True:
            reader.request()
            fields = b"".join(b"x-%d: 1\r\n" % i for i in range(40))
            conn.sendall(b"HTTP/1.1 200 OK\r\n" + fields + b"content-length: 5\r\n\r\nhello")

    with Server(script) as server:
        with SyncHTTP1Transport(max_headers=32) as strict:
            err, _ = _error(lambda: strict.send(_request(server.url)))
        with SyncHTTP1Transport(max_headers=64) as roomy:
            assert _call(roomy, server.url) == b"hello"
    assert err.code is Code.INTERNAL
    assert "SyncHTTP1Transport max_headers" in err.message


def test_a_header_with_a_line_break_is_refused() -> None:
    headers = CIMultiDict({"x-evil": "a\r\nx-injected: 1"})
    with SyncHTTP1Transport() as transport, pytest.raises(ValueError, match="line break"):
        transport.send(HTTPRequest("POST", "http://127.0.0.1:1/x", headers, b"", 1))


# --- TLS ---------------------------------------------------------------------------------


def test_tls_with_a_private_ca_and_client_certificates() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca.configure_trust(server_context)
    server_context.verify_mode = ssl.CERT_REQUIRED
    clients: list[object] = []

    def script(conn: socket.socket) -> None:
        assert isinstance(conn, ssl.SSLSocket)
        clients.append(conn.getpeercert())
        _serve_ok(conn)

    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    ca.issue_cert("client@example.com").configure_cert(client_context)
    with Server(script, server_context) as server:
        with SyncHTTP1Transport(ssl_context=client_context) as transport:
            assert _call(transport, server.url) == b"hello"
            assert _call(transport, server.url, body=iter([b"a", b"b"])) == b"hello"
        # Without the private CA the server's certificate is not trusted.
        with SyncHTTP1Transport() as untrusting:
            err, _ = _error(lambda: untrusting.send(_request(server.url)))
    assert server.accepted == 2
    assert len(clients) == 1
    assert err.code is Code.UNAVAILABLE
    assert "CERTIFICATE_VERIFY_FAILED" in err.message


# --- resources -----------------------------------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_close_leaves_no_descriptors_or_threads() -> None:
    with Server(_serve_ok) as server:
        fds, threads = _open_fds(), threading.active_count()
        transport = SyncHTTP1Transport()
        for _ in range(3):
            assert _call(transport, server.url) == b"hello"
        response = transport.send(_request(server.url))  # in use while close() runs
        assert _open_fds() == fds + 2  # the client's socket and the server's
        assert threading.active_count() == threads + 1  # the server's connection thread
        transport.close()
        assert _read_all(response) == b"hello"
        # The client's socket is closed, so the server's thread ends; join it.
        server.__exit__(None, None, None)
        assert _open_fds() == fds - 1  # the server's listener too
        assert threading.active_count() == threads - 1  # the server's acceptor too
        with pytest.raises(RuntimeError, match="closed"):
            transport.send(_request(server.url))


def test_reading_after_the_end_never_touches_the_reused_connection() -> None:
    with Server(_serve_ok) as server, SyncHTTP1Transport() as transport:
        first = transport.send(_request(server.url))
        assert _read_all(first) == b"hello"
        second = transport.send(_request(server.url))  # on the same connection
        assert first.read() == b""
        assert _read_all(second) == b"hello"
    assert server.accepted == 1


def test_reading_after_a_failure_fails_again() -> None:
    def script(conn: socket.socket) -> None:
        Reader(conn).request()
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        _wait_eof(conn)

    with Server(script) as server, SyncHTTP1Transport() as transport:
        response = transport.send(_request(server.url, timeout=0.2))
        assert response.read() == b"abc"
        for _ in range(2):
            err, _ = _error(response.read)
            assert err.code is Code.DEADLINE_EXCEEDED
        response.close(abort=True)


def test_cancelling_after_the_exchange_spares_the_reused_connection() -> None:
    token = CancelToken()
    with Server(_serve_ok) as server, SyncHTTP1Transport() as transport:
        first = transport.send(_request(server.url, cancel=token))
        assert _read_all(first) == b"hello"
        token.cancel()
        assert _call(transport, server.url) == b"hello"  # on the same connection
    assert server.accepted == 1
