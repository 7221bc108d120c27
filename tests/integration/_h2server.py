"""A small scripted HTTP/2 server (asyncio + h2, cleartext) for fault tests of HTTP2Transport.

It is not an RPC server: it records what the client sends (requests, bodies, resets, pings)
and answers only as a test tells it, so a test can misbehave on purpose (GOAWAY mid-call,
RST_STREAM, stop reading, stop answering PINGs, drop the socket). By default a request is
answered, once its body has ended, as a Connect unary call echoing a ``StringValue``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from google.protobuf import wrappers_pb2

__all__ = ["H2Server", "ServerConn", "ServerStream"]

Headers = list[tuple[str, str]]


@dataclass
class ServerStream:
    """One request as the server saw it."""

    id: int
    headers: dict[str, str]
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset: int | None = None  # the error code of a RST_STREAM from the client


class ServerConn(asyncio.Protocol):
    """One accepted connection; the test's hooks drive it through the methods below."""

    def __init__(self, server: H2Server) -> None:
        self.server = server
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, ServerStream] = {}
        self.pings = 0
        self.closed = asyncio.get_running_loop().create_future()

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.conns.append(self)
        self.h2.initiate_connection()
        if self.server.settings:
            self.h2.update_settings(self.server.settings)
        self.flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            self.abort()
            return
        for event in events:
            self._handle(event)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self.server.changed()

    def _handle(self, event: h2.events.Event) -> None:
        server = self.server
        if isinstance(event, h2.events.RequestReceived):
            assert event.headers is not None
            headers = {str(k): str(v) for k, v in event.headers}
            stream = ServerStream(event.stream_id, headers)
            self.streams[event.stream_id] = stream
            server.requests.append(stream)
            if server.on_request is not None:
                server.on_request(self, stream)
        elif isinstance(event, h2.events.DataReceived):
            stream = self.streams[event.stream_id]
            stream.body += event.data
            if server.ack_data:
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams[event.stream_id]
            stream.ended = True
            if server.on_end is not None:
                server.on_end(self, stream)
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.get(event.stream_id) or ServerStream(event.stream_id, {})
            stream.reset = int(event.error_code)
            server.resets.append(stream)
        elif isinstance(event, h2.events.PingReceived):
            self.pings += 1
        server.changed()

    # -- for the test --------------------------------------------------------------------

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def respond(
        self,
        stream_id: int,
        *,
        status: int = 200,
        headers: Headers | None = None,
        body: bytes | None = None,
        trailers: Headers | None = None,
        end: bool = True,
    ) -> None:
        """Send response headers, then ``body`` and ``trailers`` if given; end the stream
        with the last of them if ``end``."""
        fields = [(":status", str(status)), *(headers or [("content-type", "application/proto")])]
        only_headers = body is None and trailers is None
        self.h2.send_headers(stream_id, fields, end_stream=end and only_headers)
        if body is not None:
            self.send_data(stream_id, body, end=end and trailers is None)
        if trailers is not None:
            self.h2.send_headers(stream_id, trailers, end_stream=True)
        self.flush()

    def send_data(self, stream_id: int, data: bytes, *, end: bool = False) -> None:
        """Send ``data`` as far as the client's windows allow (the rest is dropped: tests
        send what fits)."""
        h2conn = self.h2
        view = memoryview(data)
        while view:
            size = min(
                len(view),
                h2conn.local_flow_control_window(stream_id),
                h2conn.max_outbound_frame_size,
            )
            if size <= 0:
                break
            h2conn.send_data(stream_id, view[:size], end_stream=end and size == len(view))
            view = view[size:]
        if not data and end:
            h2conn.end_stream(stream_id)
        self.flush()

    def echo(self, stream: ServerStream) -> None:
        """Answer as a Connect unary call returning the request message."""
        self.respond(stream.id, body=bytes(stream.body))

    def reset(self, stream_id: int, code: int) -> None:
        self.h2.reset_stream(stream_id, code)
        self.flush()

    def goaway(self, last_stream_id: int, code: int = h2.errors.ErrorCodes.NO_ERROR) -> None:
        """Send GOAWAY without closing h2's state (so in-flight streams can be answered)."""
        from hyperframe.frame import GoAwayFrame

        frame = GoAwayFrame(0)
        frame.last_stream_id = last_stream_id
        frame.error_code = code
        assert self.transport is not None
        self.flush()
        self.transport.write(frame.serialize())

    def pause_reading(self) -> None:
        assert self.transport is not None
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        assert self.transport is not None
        self.transport.resume_reading()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class H2Server:
    """``async with H2Server() as server:`` serves on 127.0.0.1; ``server.url`` is its URL.

    Hooks (plain functions, called from the protocol): ``on_request(conn, stream)`` when the
    request headers arrive, ``on_end(conn, stream)`` when its body has ended (default: echo
    it). ``ack_data=False`` leaves request data unacknowledged (the client's windows close).
    ``settings`` are sent in the server's SETTINGS.
    """

    def __init__(
        self,
        *,
        on_request: Callable[[ServerConn, ServerStream], None] | None = None,
        on_end: Callable[[ServerConn, ServerStream], None] | None = ServerConn.echo,
        ack_data: bool = True,
        settings: dict[h2.settings.SettingCodes | int, int] | None = None,
    ) -> None:
        self.on_request = on_request
        self.on_end = on_end
        self.ack_data = ack_data
        self.settings: dict[h2.settings.SettingCodes | int, int] = settings or {}
        self.conns: list[ServerConn] = []
        self.requests: list[ServerStream] = []
        self.resets: list[ServerStream] = []
        self.url = ""
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Event()

    def changed(self) -> None:
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 2.0) -> None:
        """Wait until ``predicate()`` holds (checked whenever the server sees something)."""

        async def wait() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)

    async def __aenter__(self) -> H2Server:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: ServerConn(self), "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for conn in self.conns:
            conn.abort()
        for conn in self.conns:
            await asyncio.wait_for(conn.closed, 2)
        await self._server.wait_closed()


def unary_body(value: str) -> bytes:
    return wrappers_pb2.StringValue(value=value).SerializeToString()
