"""An HTTP/2 client transport: h2's sans-IO state machine under a thin asyncio protocol.

``h2`` holds the HTTP/2 state (frames, HPACK, stream states, windows); the
``asyncio.Protocol`` here feeds it the bytes that arrive, turns its events into stream
state, and writes what it wants to send, coalesced to one write per event-loop turn. gRPC
proper needs this transport (HTTP trailers); Connect and gRPC-Web run on it too.

Connections: ``http://`` is cleartext HTTP/2 with prior knowledge (h2c); ``https://`` is TLS
with ALPN ``h2``. A server whose TLS handshake does not select ``h2`` fails the call with
``unavailable``, naming ``HTTP1Transport`` as the fix: no silent fallback to HTTP/1.1, which
would lose gRPC's trailers and full duplex. Calls to an origin share a connection up to the
server's SETTINGS_MAX_CONCURRENT_STREAMS (100 assumed until its SETTINGS arrive, at most
1000 used); when all are full another is opened, up to ``max_connections_per_origin``, and
beyond that calls wait for a slot within their deadline.

Flow control: a stream's receive window is ``read_buffer_bytes`` and data is acknowledged
only as the reader takes it, so a stream buffers at most that much. The connection window
is the largest HTTP/2 allows: the stream windows bound memory, and a slow reader never holds
up the other streams of its connection. Sending waits for the server's WINDOW_UPDATEs, and a
streaming body is pulled from the caller only as fast as the server takes it.

Full duplex: ``send`` returns once the response headers arrive, while a streaming request
body keeps flowing from a writer task. If the body iterator raises, the stream is reset
(RST_STREAM CANCEL) and the call fails with that exception, as it is. If the server ends its
response first, sending stops without error (RST_STREAM NO_ERROR, as gRPC clients do).

Trailers: ``trailers()`` gives the HTTP/2 trailers once the body has ended (empty if none
came). A *trailers-only* response (one HEADERS frame ending the stream, as gRPC servers send
for early errors) has everything in ``headers``, an empty body and empty trailers; the gRPC
protocol layer then reads the status from the headers, since no body was seen
(``GrpcWebResponseDecoder.finish``).

Errors: RST_STREAM maps to a code as gRPC's PROTOCOL-HTTP2.md ("Errors") says: CANCEL is
``canceled``, REFUSED_STREAM ``unavailable``, ENHANCE_YOUR_CALM ``resource_exhausted``,
INADEQUATE_SECURITY ``permission_denied``, anything else ``internal``. After GOAWAY a
connection takes no new streams; those up to its last stream id run to their end, those
above fail with ``unavailable`` (never processed: safe to retry). A call refused that way,
or by REFUSED_STREAM, is retried once on another connection if its request body was bytes
(unary and server-streaming calls; a stream cannot be replayed). A closed socket, or a PING
unanswered for ``keepalive_timeout`` (PINGs go every ``keepalive_interval`` while calls are
active), fails the connection's streams with ``unavailable``; a protocol violation by the
server, with ``internal``. ``request.timeout`` is a timer, not a task: when it passes the
stream is reset (CANCEL) and the call fails with ``deadline_exceeded``; cancelling a call
or closing a response early resets its stream too and frees its slot at once.

Headers: names go lower-case; a value with CR, LF or NUL, a pseudo-header, a
connection-specific header or a ``te`` other than ``trailers`` raises ``ValueError``.
``:authority`` is the URL's (or a ``host`` header's, which is not sent as such). Response
header lists are bounded by ``max_header_bytes`` (SETTINGS_MAX_HEADER_LIST_SIZE, enforced by
h2: a larger one is a protocol error).
"""

from __future__ import annotations

import asyncio
import binascii
import collections
import contextlib
import re
import ssl as ssl_module
import sys
from collections.abc import AsyncIterable, Callable
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame
from hpack import NeverIndexedHeaderTuple
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
    async_body,
    split_url,
)

__all__ = ["HTTP2Transport"]

Header = tuple[bytes, bytes]

_CONNECTION_WINDOW = 2**31 - 1  # the largest window HTTP/2 allows (RFC 9113 section 6.9.1)
_DEFAULT_WINDOW = 65_535  # every window's size before SETTINGS say otherwise
# The largest frame we accept (the default is 16 KiB): h2 costs about 10 µs a frame, so large
# messages go faster in large frames.
_MAX_FRAME_SIZE = 1024 * 1024
_TLS_SHUTDOWN_TIMEOUT = 1.0  # seconds a closing TLS connection waits for close_notify
_INITIAL_STREAMS = 100  # streams assumed allowed before the server's SETTINGS arrive
_MAX_STREAMS = 1000  # streams used per connection, whatever the server allows
_PING_DATA = b"cnrpc-ka"

_ErrorCodes = h2.errors.ErrorCodes

# RST_STREAM error codes as gRPC codes (PROTOCOL-HTTP2.md, "Errors"); anything else: internal.
_RST_CODES: dict[int, Code] = {
    _ErrorCodes.CANCEL: Code.CANCELED,
    _ErrorCodes.REFUSED_STREAM: Code.UNAVAILABLE,
    _ErrorCodes.ENHANCE_YOUR_CALM: Code.RESOURCE_EXHAUSTED,
    _ErrorCodes.INADEQUATE_SECURITY: Code.PERMISSION_DENIED,
}

# Hop-by-hop fields HTTP/2 forbids (RFC 9113 section 8.2.2); ``te`` is allowed as "trailers".
_CONNECTION_HEADERS = frozenset(
    {"connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade"}
)
_SENSITIVE = frozenset({b"authorization", b"proxy-authorization"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")

_H2_CONFIG = h2.config.H2Configuration(
    client_side=True,
    header_encoding=None,
    # Outbound headers are checked and lower-cased here, once, before h2 sees them.
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
    validate_inbound_headers=True,
    normalize_inbound_headers=True,
)


def _error_name(code: int | None) -> str:
    if code is None:
        return "error code unknown"
    try:
        return _ErrorCodes(code).name
    except ValueError:
        return f"error code {code}"


def _hex_prefix(data: bytes | None) -> str:
    """hyperframe's ``_raw_data_repr``, computed from the bytes it shows: the same string."""
    if not data:
        return "None"
    shown = binascii.hexlify(data[:11]).decode("ascii")
    return "<hex:" + (shown[:20] + "..." if len(shown) > 20 else shown) + ">"


# h2 logs every frame it receives with ``repr(frame)``, computed eagerly even though its
# logger discards it, and hyperframe's repr hex-encodes a DATA frame's whole payload to show
# its first 20 hex digits: 44% of the CPU time of a 1 MiB message stream. The replacement
# returns the same string from the first 11 bytes. It applies to every user of hyperframe in
# the process (hypercorn's HTTP/2 too), with identical output.
hyperframe.frame._raw_data_repr = _hex_prefix


def _abandon(connecting: asyncio.Future[tuple[asyncio.Transport, _Connection]]) -> None:
    """Give up on a connection attempt; close the connection if it is made all the same."""

    def close(done: asyncio.Future[tuple[asyncio.Transport, _Connection]]) -> None:
        if not done.cancelled() and done.exception() is None:
            done.result()[0].abort()

    connecting.cancel()
    connecting.add_done_callback(close)


def _reset_error(code: int) -> ConnectError:
    mapped = _RST_CODES.get(code, Code.INTERNAL)
    return ConnectError(mapped, f"the server reset the stream (RST_STREAM {_error_name(code)})")


class _StateMachine(h2.connection.H2ConnectionStateMachine):
    """h2's connection state machine, except that receiving GOAWAY leaves it open.

    h2 (4.x) closes its connection state on GOAWAY and then refuses every frame, although
    RFC 9113 section 6.8 lets the streams up to the GOAWAY's last stream id run to their
    end (h2 issue #1181). The transport opens no new stream on a connection after GOAWAY.
    """

    _transitions = {
        **h2.connection.H2ConnectionStateMachine._transitions,
        (h2.connection.ConnectionState.CLIENT_OPEN, h2.connection.ConnectionInputs.RECV_GOAWAY): (
            None,
            h2.connection.ConnectionState.CLIENT_OPEN,
        ),
    }


class _Pool:
    """The connections to one origin, and the calls waiting for a stream slot."""

    __slots__ = ("connecting", "conns", "expecting", "waiters")

    def __init__(self) -> None:
        self.conns: list[_Connection] = []
        self.connecting = 0  # connections being established
        self.expecting = 0  # calls waiting for one of those
        self.waiters: list[asyncio.Future[None]] = []

    def wake(self, error: ConnectError | None = None) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(ConnectError(error.code, error.message))

    def remove(self, conn: _Connection) -> None:
        if conn in self.conns:
            self.conns.remove(conn)
            self.wake()

    async def wait(self, loop: asyncio.AbstractEventLoop, deadline: float | None) -> None:
        waiter: asyncio.Future[None] = loop.create_future()
        self.waiters.append(waiter)
        timer = None
        if deadline is not None:
            timer = loop.call_at(deadline, _expire_waiter, waiter)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            if waiter in self.waiters:
                self.waiters.remove(waiter)


def _expire_waiter(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(deadline_exceeded())


class _Stream:
    """One request/response exchange on a connection."""

    __slots__ = (
        "_send_waiter",
        "_waiter",
        "body",
        "conn",
        "ended",
        "error",
        "headers",
        "id",
        "out",
        "out_done",
        "out_end",
        "retry_safe",
        "status",
        "timer",
        "trailers",
        "writer",
    )

    def __init__(self, conn: _Connection, stream_id: int) -> None:
        self.conn = conn
        self.id = stream_id
        self.status = 0
        self.headers: CIMultiDict[str] = CIMultiDict()
        self.trailers: CIMultiDict[str] = CIMultiDict()
        self.body = ChunkBuffer()  # received, not yet read (at most one stream window)
        self.ended = False  # END_STREAM received: the response is complete
        self.error: BaseException | None = None
        self.retry_safe = False  # failed before the server processed it
        self.out: collections.deque[memoryview] = collections.deque()  # body not yet framed
        self.out_end = False  # END_STREAM goes out once ``out`` is sent
        self.out_done = False  # END_STREAM sent, or sending abandoned
        self.timer: asyncio.TimerHandle | None = None
        self.writer: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._send_waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def wake_sender(self) -> None:
        waiter = self._send_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Wait for the next event on this stream (headers, data, end or failure)."""
        self._waiter = self.conn.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def sendable(self) -> None:
        """Wait until the queued body is handed to h2 and the socket takes more."""
        conn = self.conn
        while not self.out_done and (self.out or conn.paused):
            self._send_waiter = conn.loop.create_future()
            try:
                await self._send_waiter
            finally:
                self._send_waiter = None

    def expire(self) -> None:
        self.timer = None
        self.conn.fail_stream(self, deadline_exceeded(), _ErrorCodes.CANCEL)


class _Connection(asyncio.Protocol):
    """One HTTP/2 connection: h2's state, the socket, and the streams open on it."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pool: _Pool,
        transport_options: HTTP2Transport,
        tls: bool,
    ) -> None:
        self.loop = loop
        self._pool = pool
        self._options = transport_options
        self._tls = tls
        self.h2 = h2.connection.H2Connection(config=_H2_CONFIG)
        self.h2.state_machine = _StateMachine()
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, _Stream] = {}
        self._blocked: dict[int, _Stream] = {}  # streams waiting for a WINDOW_UPDATE
        self.closed = False  # no more frames in or out
        self.draining = False  # no new streams (GOAWAY received or sent)
        self.error: ConnectError | None = None  # why the connection could not be used
        self.paused = False
        self._flush_scheduled = False
        self._settings_received = False
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_since = 0.0
        self._ping_timer: asyncio.TimerHandle | None = None
        self._ping_deadline: asyncio.TimerHandle | None = None
        self.lost: asyncio.Future[None] = loop.create_future()

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self._tls:
            ssl_object = transport.get_extra_info("ssl_object")
            selected = None if ssl_object is None else ssl_object.selected_alpn_protocol()
            if selected != "h2":
                peer = transport.get_extra_info("peername")
                self.error = ConnectError(
                    Code.UNAVAILABLE,
                    f"the server at {peer} did not agree to HTTP/2 in the TLS handshake "
                    f"(ALPN selected {selected!r}): use HTTP1Transport for this server",
                )
                self.closed = self.draining = True
                transport.abort()
                return
        options = self._options
        h2conn = self.h2
        h2conn.initiate_connection()
        h2conn.update_settings(
            {
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: options._read_buffer_bytes,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: _MAX_FRAME_SIZE,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: options._max_header_bytes,
            }
        )
        h2conn.increment_flow_control_window(_CONNECTION_WINDOW - _DEFAULT_WINDOW)
        transport.write(h2conn.data_to_send())
        self._arm_idle()
        self._arm_ping()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        # What h2 has queued goes out first: receiving a GOAWAY clears h2's output buffer.
        self._flush()
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.DenialOfServiceError as exc:
            self._fatal(
                ConnectError(
                    Code.INTERNAL,
                    f"invalid HTTP/2 response: {exc} (HTTP2Transport max_header_bytes is "
                    f"{self._options._max_header_bytes})",
                ),
                goaway=True,
            )
            return
        except h2.exceptions.ProtocolError as exc:
            self._fatal(
                ConnectError(Code.INTERNAL, f"HTTP/2 protocol error from the server: {exc}"),
                goaway=True,
            )
            return
        for event in events:
            handler = _HANDLERS.get(type(event))
            if handler is not None:
                handler(self, event)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if self.error is None:
            self.error = ConnectError(
                Code.UNAVAILABLE, f"the HTTP/2 connection closed: {exc or 'closed by the server'}"
            )
        self._shutdown(self.error)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        for stream in list(self.streams.values()):
            stream.wake_sender()

    # -- h2 events ---------------------------------------------------------------------

    def _on_response(self, event: h2.events.ResponseReceived) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is None:
            return
        status = 0
        fields: list[tuple[str, str]] = []
        for name, value in event.headers:
            if name == b":status":
                status = int(value) if value.isdigit() else 0
            elif not name.startswith(b":"):
                fields.append((name.decode("latin-1"), value.decode("latin-1")))
        if not 200 <= status <= 999:
            self.fail_stream(
                stream,
                ConnectError(Code.INTERNAL, f"invalid HTTP/2 response: status {status}"),
                _ErrorCodes.PROTOCOL_ERROR,
            )
            return
        stream.status = status
        stream.headers = CIMultiDict(fields)
        stream.wake()

    def _on_trailers(self, event: h2.events.TrailersReceived) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.trailers = CIMultiDict(
                (n.decode("latin-1"), v.decode("latin-1"))
                for n, v in event.headers
                if not n.startswith(b":")
            )

    def _on_data(self, event: h2.events.DataReceived) -> None:
        stream = self.streams.get(event.stream_id)
        data = event.data
        if stream is None:
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            return
        if data:
            stream.body.append(data)
        padding = event.flow_controlled_length - len(data)
        if padding:
            self.h2.acknowledge_received_data(padding, event.stream_id)
        stream.wake()

    def _on_end(self, event: h2.events.StreamEnded) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is None:
            return
        stream.ended = True
        if not stream.out_done:
            # The response is complete while the request is still going: stop sending, as
            # RFC 9113 section 8.1 allows (gRPC clients do the same).
            self._stop_sending(stream, _ErrorCodes.NO_ERROR)
        self._release(stream)
        stream.wake()

    def _on_reset(self, event: h2.events.StreamReset) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is None:
            return
        code = int(event.error_code)
        timer = stream.timer
        if event.remote_reset and timer is not None and timer.when() <= self.loop.time():
            # gRPC servers reset a stream whose deadline passed (grpc-go: CANCEL); read
            # before our own timer ran, it is still the deadline that ended the call.
            error = deadline_exceeded()
        elif event.remote_reset:
            error = _reset_error(code)
            if code == _ErrorCodes.REFUSED_STREAM and stream.status == 0:
                stream.retry_safe = True
                error = ConnectError(
                    Code.UNAVAILABLE,
                    "the server refused the stream (RST_STREAM REFUSED_STREAM) before "
                    "processing it; it is safe to retry",
                )
        else:
            error = ConnectError(
                Code.INTERNAL, f"invalid HTTP/2 response: stream error {_error_name(code)}"
            )
        self.fail_stream(stream, error, None)

    def _on_window(self, event: h2.events.WindowUpdated) -> None:
        if event.stream_id == 0:
            self._pump_blocked()
        else:
            stream = self._blocked.get(event.stream_id)
            if stream is not None:
                self._pump(stream)

    def _on_settings(self, event: h2.events.RemoteSettingsChanged) -> None:
        self._settings_received = True
        changed = event.changed_settings
        if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in changed:
            self._pump_blocked()
        if h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS in changed:
            self._pool.wake()

    def _on_ping_ack(self, event: h2.events.PingAckReceived) -> None:
        if self._ping_deadline is not None:
            self._ping_deadline.cancel()
            self._ping_deadline = None
            self._arm_ping()

    def _on_goaway(self, event: h2.events.ConnectionTerminated) -> None:
        self.draining = True
        self._pool.remove(self)
        last = event.last_stream_id or 0
        name = _error_name(event.error_code)
        detail = (
            f": {event.additional_data.decode('utf-8', 'replace')}" if event.additional_data else ""
        )
        for stream in list(self.streams.values()):
            if stream.id > last:
                stream.retry_safe = True
                self.fail_stream(
                    stream,
                    ConnectError(
                        Code.UNAVAILABLE,
                        f"the server is closing the connection (GOAWAY {name}{detail}) and never "
                        "processed this request; it is safe to retry",
                    ),
                    None,
                )
        if not self.streams:
            self.close()

    # -- streams -----------------------------------------------------------------------

    def has_capacity(self) -> bool:
        if self.draining:
            return False
        if self._settings_received:
            limit = min(self.h2.remote_settings.max_concurrent_streams, _MAX_STREAMS)
        else:
            limit = _INITIAL_STREAMS
        return len(self.streams) < limit

    def open_stream(self, headers: list[Header], body: bytes | None) -> _Stream | None:
        """Send a request's headers (and a bytes ``body``, as windows allow); ``None`` if the
        connection cannot take another stream after all."""
        h2conn = self.h2
        try:
            stream_id = h2conn.get_next_available_stream_id()
            h2conn.send_headers(stream_id, headers, end_stream=body is not None and not body)
        except (h2.exceptions.NoAvailableStreamIDError, h2.exceptions.TooManyStreamsError):
            # Stream ids used up (or h2 counts more streams than we do): new calls go to
            # another connection, and this one closes once its calls end.
            self._drain()
            return None
        except h2.exceptions.ProtocolError as exc:
            self._drain()  # h2's HPACK state may be off: no more streams here
            raise ConnectError(Code.INTERNAL, f"cannot send the request headers: {exc}") from exc
        stream = _Stream(self, stream_id)
        self.streams[stream_id] = stream
        if body is not None:
            if body:
                stream.out.append(memoryview(body))
                stream.out_end = True
                self._pump(stream)
            else:
                stream.out_done = True
        self._schedule_flush()
        return stream

    def send_chunk(self, stream: _Stream, chunk: bytes) -> None:
        """Queue part of a streaming body and write what the windows allow at once."""
        if stream.out_done or stream.id not in self.streams:
            return
        stream.out.append(memoryview(chunk))
        self._pump(stream)
        self._flush()

    def end_body(self, stream: _Stream) -> None:
        if stream.out_done or stream.id not in self.streams:
            return
        stream.out_end = True
        self._pump(stream)
        self._flush()

    def _pump(self, stream: _Stream) -> None:
        """Frame as much of ``stream``'s queued body as the windows allow."""
        h2conn = self.h2
        stream_id = stream.id
        out = stream.out
        try:
            while out:
                window = h2conn.local_flow_control_window(stream_id)
                if window <= 0:
                    self._blocked[stream_id] = stream
                    self._schedule_flush()
                    return
                chunk = out[0]
                size = min(len(chunk), window, h2conn.max_outbound_frame_size)
                if size == len(chunk):
                    out.popleft()
                else:
                    out[0] = chunk[size:]
                    chunk = chunk[:size]
                last = not out and stream.out_end
                h2conn.send_data(stream_id, chunk, end_stream=last)
                if last:
                    stream.out_done = True
            if stream.out_end and not stream.out_done:
                h2conn.end_stream(stream_id)
                stream.out_done = True
        except h2.exceptions.ProtocolError as exc:
            self.fail_stream(
                stream,
                ConnectError(Code.INTERNAL, f"cannot send the request: {exc}"),
                _ErrorCodes.INTERNAL_ERROR,
            )
            return
        self._blocked.pop(stream_id, None)
        self._schedule_flush()
        stream.wake_sender()

    def _pump_blocked(self) -> None:
        for stream in list(self._blocked.values()):
            self._pump(stream)

    def _stop_sending(self, stream: _Stream, code: _ErrorCodes) -> None:
        stream.out.clear()
        stream.out_done = True
        self._blocked.pop(stream.id, None)
        if not self.closed:
            with contextlib.suppress(h2.exceptions.H2Error):  # h2 has closed it already
                self.h2.reset_stream(stream.id, code)
            self._schedule_flush()
        stream.wake_sender()

    def _release(self, stream: _Stream) -> None:
        """The stream needs no more frames: free its slot."""
        if self.streams.pop(stream.id, None) is None:
            return
        self._blocked.pop(stream.id, None)
        if not self.streams:
            if self.draining:
                self.close()
            else:
                self._arm_idle()
        if self._pool.waiters:
            self._pool.wake()

    def fail_stream(self, stream: _Stream, error: BaseException, reset: _ErrorCodes | None) -> None:
        """Fail ``stream`` with ``error`` unless its response is complete (the first failure
        wins), resetting it with ``reset`` if it is still open, and free its slot."""
        if stream.error is None and not stream.ended:
            stream.error = error
        if stream.id in self.streams:
            if reset is not None:
                self._stop_sending(stream, reset)
            else:
                stream.out.clear()
                stream.out_done = True
                stream.wake_sender()
            self._release(stream)
        stream.wake()

    def consumed(self, stream: _Stream, size: int) -> None:
        """The reader took ``size`` bytes: open the windows by as much."""
        if not self.closed:
            self.h2.acknowledge_received_data(size, stream.id)
            self._schedule_flush()

    def close_stream(self, stream: _Stream) -> None:
        """The caller is done with ``stream``: reset it if it is still open."""
        if stream.timer is not None:
            stream.timer.cancel()
            stream.timer = None
        writer = stream.writer
        if writer is not None and not writer.done():
            writer.cancel()
        if stream.id in self.streams:
            self.fail_stream(
                stream,
                ConnectError(Code.CANCELED, "the call was closed before its end"),
                _ErrorCodes.CANCEL,
            )
        unread = stream.body.size
        if unread:
            stream.body.clear()
            self.consumed(stream, unread)

    # -- the connection ----------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._flush_scheduled = False
        self._flush()

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _drain(self) -> None:
        """Take no new streams; close once the current ones end."""
        self.draining = True
        self._pool.remove(self)
        if not self.streams:
            self.close()

    def _arm_idle(self) -> None:
        # One timer per idle period, not one per call: it re-arms itself while calls come
        # and go, and is dropped when it fires with calls active (the next idle arms it).
        self._idle_since = self.loop.time()
        if self._idle_timer is None:
            self._idle_timer = self.loop.call_later(self._options._idle_timeout, self._idle)

    def _idle(self) -> None:
        self._idle_timer = None
        if self.streams or self.closed:
            return
        remaining = self._idle_since + self._options._idle_timeout - self.loop.time()
        if remaining > 0:
            self._idle_timer = self.loop.call_later(remaining, self._idle)
        else:
            self.close()

    def _arm_ping(self) -> None:
        interval = self._options._keepalive_interval
        if interval is not None and not self.closed:
            self._ping_timer = self.loop.call_later(interval, self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        if self.closed:
            return
        if not self.streams:
            self._arm_ping()  # PINGs only while calls are active, as gRPC clients do
            return
        self.h2.ping(_PING_DATA)
        self._flush()
        self._ping_deadline = self.loop.call_later(
            self._options._keepalive_timeout, self._ping_timed_out
        )

    def _ping_timed_out(self) -> None:
        self._ping_deadline = None
        self._fatal(
            ConnectError(
                Code.UNAVAILABLE,
                f"the server did not answer a keepalive PING within "
                f"{self._options._keepalive_timeout} s (HTTP2Transport keepalive_timeout): "
                "the connection is considered dead",
            )
        )

    def _fatal(self, error: ConnectError, *, goaway: bool = False) -> None:
        """The connection is unusable: fail every stream with ``error`` and drop it. With
        ``goaway``, the GOAWAY h2 prepared for a protocol error goes out first."""
        if self.error is None:
            self.error = error
        transport = self.transport
        if transport is not None:
            if goaway:
                self._flush()
                transport.close()  # after the GOAWAY is written...
                self.loop.call_later(1.0, transport.abort)  # ...or a second has passed
            else:
                transport.abort()
        self._shutdown(error)

    def _shutdown(self, error: ConnectError) -> None:
        self.closed = self.draining = True
        self._pool.remove(self)
        for timer in (self._idle_timer, self._ping_timer, self._ping_deadline):
            if timer is not None:
                timer.cancel()
        self._idle_timer = self._ping_timer = self._ping_deadline = None
        for stream in list(self.streams.values()):
            self.fail_stream(stream, ConnectError(error.code, error.message), None)

    def close(self) -> None:
        """Close gracefully: GOAWAY, then the socket (streams still open fail)."""
        if self.closed:
            return
        self.draining = True
        self._pool.remove(self)
        with contextlib.suppress(h2.exceptions.H2Error):
            self.h2.close_connection()
        self._flush()
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._shutdown(
            self.error or ConnectError(Code.UNAVAILABLE, "the HTTP/2 connection was closed")
        )


_HANDLERS: dict[type[h2.events.Event], Callable[[_Connection, Any], None]] = {
    h2.events.ResponseReceived: _Connection._on_response,
    h2.events.TrailersReceived: _Connection._on_trailers,
    h2.events.DataReceived: _Connection._on_data,
    h2.events.StreamEnded: _Connection._on_end,
    h2.events.StreamReset: _Connection._on_reset,
    h2.events.WindowUpdated: _Connection._on_window,
    h2.events.RemoteSettingsChanged: _Connection._on_settings,
    h2.events.PingAckReceived: _Connection._on_ping_ack,
    h2.events.ConnectionTerminated: _Connection._on_goaway,
}


class _Response(TransportResponse):
    __slots__ = ("_stream", "headers", "status")

    def __init__(self, stream: _Stream) -> None:
        self._stream = stream
        self.status = stream.status
        self.headers = stream.headers

    async def read(self) -> bytes:
        stream = self._stream
        while True:
            body = stream.body
            if body:
                chunk = body.pop_first()
                stream.conn.consumed(stream, len(chunk))
                return chunk
            if stream.error is not None:
                raise stream.error
            if stream.ended:
                return b""
            try:
                await stream.wait()
            except BaseException:
                stream.conn.close_stream(stream)
                raise

    def trailers(self) -> CIMultiDict[str] | None:
        stream = self._stream
        return stream.trailers if stream.ended else None

    async def close(self, *, abort: bool) -> None:
        self._stream.conn.close_stream(self._stream)


async def _write_body(conn: _Connection, stream: _Stream, body: AsyncIterable[bytes]) -> None:
    """Send a streaming request body as the server's windows allow. A failure of the
    connection or the stream is left for the reader to report; an exception from ``body``
    itself (the caller's messages, or an interceptor's ``on_request``) resets the stream and
    fails the call with that exception, as it is."""
    chunks = body.__aiter__()
    finished = False
    try:
        while not stream.out_done:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                finished = True
                conn.end_body(stream)
                return
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                finished = True
                conn.fail_stream(stream, exc, _ErrorCodes.CANCEL)
                return
            if chunk:
                conn.send_chunk(stream, chunk)
                await stream.sendable()
    finally:
        aclose = getattr(chunks, "aclose", None)
        if not finished and aclose is not None:
            with contextlib.suppress(Exception):  # the body's own cleanup; the call is over
                await aclose()


class HTTP2Transport(AsyncTransport):
    """An HTTP/2 transport with its own connection pool, for gRPC, Connect and gRPC-Web.

    ``https://`` URLs use ``ssl_context`` (default: the system's trusted CAs; load client
    certificates into it). The transport sets its ALPN to ``h2``, so do not share it with an
    HTTP/1.1 client. A server that does not agree to HTTP/2 fails the call with
    ``unavailable``: use ``HTTP1Transport`` for it.

    Knobs (defaults in brackets):
        max_connections_per_origin: connections per origin [10]; each carries as many
            concurrent calls as the server allows (at most 1000), and calls beyond every
            connection's capacity wait for a free stream, within their deadline.
        connect_timeout: seconds for the TCP and TLS handshakes [10; ``None``: only the
            call's deadline].
        keepalive_interval: seconds between PINGs while calls are active [``None``: none].
        keepalive_timeout: seconds a PING may go unanswered before the connection is
            declared dead and its calls fail with ``unavailable`` [20].
        idle_timeout: seconds a connection without calls is kept open [60].
        max_header_bytes: the largest response header (or trailer) list accepted, as HTTP/2
            measures it: names, values and 32 bytes per field [64 KiB].
        read_buffer_bytes: the receive window per stream, so the most response body
            buffered for a call that is not reading [4 MiB: a 1 MiB message streams at full
            speed; a smaller window makes each wait for a WINDOW_UPDATE round trip].

    ``open_connections()`` and ``open_streams()`` report the pool's state (for tests and
    metrics).
    """

    supports_trailers = True

    def __init__(
        self,
        *,
        ssl_context: ssl_module.SSLContext | None = None,
        max_connections_per_origin: int = 10,
        connect_timeout: float | None = 10.0,
        keepalive_interval: float | None = None,
        keepalive_timeout: float = 20.0,
        idle_timeout: float = 60.0,
        max_header_bytes: int = 64 * 1024,
        read_buffer_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        if max_connections_per_origin < 1:
            raise ValueError("max_connections_per_origin must be at least 1")
        if max_header_bytes < 1:
            raise ValueError("max_header_bytes must be at least 1")
        if not 1 <= read_buffer_bytes <= _CONNECTION_WINDOW:
            raise ValueError(f"read_buffer_bytes must be between 1 and {_CONNECTION_WINDOW}")
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("keepalive_interval", keepalive_interval),
            ("keepalive_timeout", keepalive_timeout),
            ("idle_timeout", idle_timeout),
        ):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive")
        if ssl_context is not None:
            ssl_context.set_alpn_protocols(["h2"])
        self._ssl = ssl_context
        self._max_connections = max_connections_per_origin
        self._connect_timeout = connect_timeout
        self._keepalive_interval = keepalive_interval
        self._keepalive_timeout = keepalive_timeout
        self._idle_timeout = idle_timeout
        self._max_header_bytes = max_header_bytes
        self._read_buffer_bytes = read_buffer_bytes
        self._pools: dict[Origin, _Pool] = {}
        self._all: set[_Connection] = set()
        self._urls: dict[str, tuple[Origin, bytes, bytes, bytes]] = {}
        self._names: dict[str, bytes] = {}

    # -- introspection -------------------------------------------------------------------

    def open_connections(self) -> int:
        """How many connections are open (including ones finishing after a GOAWAY)."""
        return sum(1 for conn in self._all if not conn.closed)

    def open_streams(self) -> int:
        """How many streams (calls) are in progress on this transport's connections."""
        return sum(len(conn.streams) for conn in self._all)

    # -- requests ------------------------------------------------------------------------

    def _split(self, url: str) -> tuple[Origin, bytes, bytes, bytes]:
        cached = self._urls.get(url)
        if cached is not None:
            return cached
        origin, path, authority = split_url(url)
        split = (
            origin,
            origin[0].encode("ascii"),
            authority.encode("latin-1"),
            path.encode("latin-1"),
        )
        if len(self._urls) < 4096:
            self._urls[url] = split
        return split

    def _name(self, name: str) -> bytes:
        encoded = self._names.get(name)
        if encoded is not None:
            return encoded
        lower = name.lower()
        if not _TOKEN.fullmatch(lower):
            raise ValueError(f"invalid header name {name!r}")
        if lower in _CONNECTION_HEADERS:
            raise ValueError(f"header {name!r} is connection-specific, which HTTP/2 forbids")
        encoded = lower.encode("ascii")
        if len(self._names) < 1024:
            self._names[name] = encoded
        return encoded

    def _headers(self, request: HTTPRequest, body: bytes | None) -> tuple[Origin, list[Header]]:
        origin, scheme, authority, path = self._split(request.url)
        fields: list[Header] = []
        has_length = False
        for key, value in request.headers.items():
            name = self._name(key)
            raw = value.strip(" \t").encode("latin-1")
            if b"\r" in raw or b"\n" in raw or b"\0" in raw:
                raise ValueError(f"header {key!r} contains a line break or NUL")
            if name == b"host":
                authority = raw
                continue
            if name == b"te" and raw.lower() != b"trailers":
                raise ValueError(f"header 'te' may only be 'trailers' in HTTP/2, not {value!r}")
            if name == b"content-length":
                has_length = True
            if name in _SENSITIVE:
                fields.append(NeverIndexedHeaderTuple(name, raw))
            else:
                fields.append((name, raw))
        if body is not None and not has_length and (body or request.method != "GET"):
            fields.append((b"content-length", b"%d" % len(body)))
        head: list[Header] = [
            (b":method", request.method.encode("ascii")),
            (b":scheme", scheme),
            (b":authority", authority),
            (b":path", path),
        ]
        head.extend(fields)
        return origin, head

    def _ssl_context(self) -> ssl_module.SSLContext:
        if self._ssl is None:
            context = ssl_module.create_default_context()
            context.set_alpn_protocols(["h2"])
            self._ssl = context
        return self._ssl

    async def _connect(self, origin: Origin, pool: _Pool, deadline: float | None) -> _Connection:
        loop = asyncio.get_running_loop()
        scheme, host, port = origin
        tls = scheme == "https"
        ssl = self._ssl_context() if tls else None
        timeout = self._connect_timeout
        deadline_first = False  # the call's deadline comes before connect_timeout
        if deadline is not None:
            remaining = max(deadline - loop.time(), 0)
            if timeout is None or remaining < timeout:
                timeout = remaining
                deadline_first = True
        extra: dict[str, Any] = {}
        if tls and sys.version_info >= (3, 11):
            # Servers that never answer TLS close_notify (grpc-core) would otherwise keep a
            # closed connection's socket for asyncio's default of 30 s.
            extra["ssl_shutdown_timeout"] = _TLS_SHUTDOWN_TIMEOUT
        connecting = asyncio.ensure_future(
            loop.create_connection(
                lambda: _Connection(loop, pool, self, tls), host, port, ssl=ssl, **extra
            )
        )
        # Not asyncio.wait_for: before Python 3.12 it loses a cancellation that arrives as
        # the connection completes, and the cancelled call would go on.
        try:
            done, _ = await asyncio.wait({connecting}, timeout=timeout)
        except BaseException:
            _abandon(connecting)
            raise
        if not done:
            _abandon(connecting)
            if deadline_first:
                raise deadline_exceeded()
            raise ConnectError(
                Code.UNAVAILABLE,
                f"cannot connect to {host}:{port}: no connection within {self._connect_timeout} s "
                "(HTTP2Transport connect_timeout)",
            )
        try:
            _, conn = connecting.result()
        except OSError as exc:
            raise ConnectError(Code.UNAVAILABLE, f"cannot connect to {host}:{port}: {exc}") from exc
        if conn.error is not None or conn.closed:
            raise conn.error or ConnectError(
                Code.UNAVAILABLE, f"the connection to {host}:{port} closed at once"
            )
        self._all.add(conn)
        conn.lost.add_done_callback(lambda _: self._all.discard(conn))
        return conn

    async def _open(
        self,
        origin: Origin,
        headers: list[Header],
        body: bytes | None,
        deadline: float | None,
    ) -> _Stream:
        """Open a stream to ``origin``: on a connection with a free slot, a new connection,
        or, with every connection allowed busy, the first slot to come free."""
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = _Pool()
        loop = asyncio.get_running_loop()
        while True:
            for conn in pool.conns:
                if conn.has_capacity():
                    stream = conn.open_stream(headers, body)
                    if stream is not None:
                        return stream
            if deadline is not None and loop.time() >= deadline:
                raise deadline_exceeded()
            if pool.expecting < pool.connecting * _INITIAL_STREAMS:
                # A connection on its way will have room for this call too: wait for it
                # rather than open another.
                pool.expecting += 1
                try:
                    await pool.wait(loop, deadline)
                finally:
                    pool.expecting -= 1
                continue
            if len(pool.conns) + pool.connecting < self._max_connections:
                pool.connecting += 1
                try:
                    conn = await self._connect(origin, pool, deadline)
                except ConnectError as exc:
                    # Calls waiting for this connection fail with it too, rather than each
                    # trying (and timing out) in turn.
                    pool.wake(exc if exc.code is Code.UNAVAILABLE else None)
                    raise
                except BaseException:
                    pool.wake()
                    raise
                finally:
                    pool.connecting -= 1
                if not conn.draining:
                    pool.conns.append(conn)
                pool.wake()
                continue
            await pool.wait(loop, deadline)

    async def send(self, request: HTTPRequest) -> TransportResponse:
        loop = asyncio.get_running_loop()
        body = async_body(request.body)
        data: bytes | None = None
        source: AsyncIterable[bytes] | None = None
        if isinstance(body, (bytes, bytearray, memoryview)):
            data = bytes(body)
        else:
            source = body
        origin, headers = self._headers(request, data)
        deadline = None if request.timeout is None else loop.time() + request.timeout
        for attempt in (0, 1):
            stream = None
            pool = self._pools.get(origin)
            if pool is not None and pool.conns and attempt == 0:
                conn = pool.conns[0]  # the common case: room on the first connection
                if conn.has_capacity():
                    stream = conn.open_stream(headers, data)
            if stream is None:
                stream = await self._open(origin, headers, data, deadline)
            conn = stream.conn
            if deadline is not None:
                stream.timer = loop.call_at(deadline, stream.expire)
            if source is not None:
                stream.writer = asyncio.ensure_future(_write_body(conn, stream, source))
            try:
                while stream.status == 0:
                    if stream.error is not None:
                        raise stream.error
                    await stream.wait()
            except BaseException:
                conn.close_stream(stream)
                # Never processed by the server (GOAWAY, REFUSED_STREAM): a bytes body can go
                # again, on another connection.
                if attempt == 0 and stream.retry_safe and source is None:
                    continue
                raise
            return _Response(stream)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        """Close every connection; calls still in progress fail with ``unavailable``."""
        conns = list(self._all)
        for conn in conns:
            conn.close()
        self._pools.clear()
        waiting = [conn.lost for conn in conns if not conn.lost.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=1.0)
