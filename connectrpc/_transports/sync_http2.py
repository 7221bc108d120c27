"""``SyncHTTP2Transport``: HTTP/2, and so gRPC, for the blocking client.

gRPC needs HTTP/2 trailers, which no blocking HTTP library for Python exposes. Rather than a
second HTTP/2 client, this drives the async ``HTTP2Transport`` (h2 under an asyncio protocol)
on an event loop that runs in a daemon thread of its own, one per transport: every call's
operations (send, each read, close) are submitted to that loop, and the calling thread
waits for their results. Multiplexing, flow control, GOAWAY handling, keepalive and deadlines
are therefore exactly the async transport's, and calls from many threads share its
connections.

The cost is a hand-off between threads per operation (tens of microseconds); for Connect
and gRPC-Web over HTTP/1.1 ``SyncHTTP1Transport`` is faster. Calls are half-duplex, as
everywhere in the sync client: the caller's request iterable is drained into the stream
first, in the calling thread (so it may block or sleep without stalling the loop), then the
response is read.

Cancelling the call's ``CancelToken``, or closing the response from another thread, cancels
the operation waiting on the loop: the stream is reset (RST_STREAM CANCEL) and the call fails
with ``canceled``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import ssl
import threading
from collections.abc import AsyncIterator, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from multidict import CIMultiDict

from connectrpc._core.error import canceled
from connectrpc._transports.base import (
    HTTPRequest,
    SyncTransport,
    SyncTransportResponse,
    TransportResponse,
)
from connectrpc._transports.cancel import CancelToken
from connectrpc._transports.http2 import HTTP2Transport

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["HTTP2Options", "SyncHTTP2Transport"]

T = TypeVar("T")

_END = object()


class _Loop:
    """An event loop running in a daemon thread, and blocking calls into it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="connectrpc-sync-http2", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def wait(self, future: concurrent.futures.Future[T], cancel: CancelToken | None) -> T:
        """``future``'s result; a cancelled token (or cancelled future) is ``canceled``.
        The async transport bounds every operation by the call's deadline."""
        unregister = None if cancel is None else cancel.on_cancel(future.cancel)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise canceled() from None
        except BaseException:
            future.cancel()  # the caller was interrupted (KeyboardInterrupt): stop the work
            raise
        finally:
            if unregister is not None:
                unregister()

    def call(self, coroutine: Coroutine[Any, Any, T], cancel: CancelToken | None = None) -> T:
        return self.wait(self.submit(coroutine), cancel)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class _Upload:
    """The request body, handed from the calling thread to the loop chunk by chunk."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[object] = asyncio.Queue()

    def put(self, item: object) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    async def chunks(self) -> AsyncIterator[bytes]:
        while (item := await self._queue.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]


class _Response(SyncTransportResponse):
    def __init__(
        self, loop: _Loop, response: TransportResponse, cancel: CancelToken | None
    ) -> None:
        self.status = response.status
        self.headers = response.headers
        self._loop = loop
        self._response = response
        self._cancel = cancel
        self._reading: concurrent.futures.Future[bytes] | None = None

    def read(self) -> bytes:
        self._reading = self._loop.submit(self._response.read())
        try:
            return self._loop.wait(self._reading, self._cancel)
        finally:
            self._reading = None

    def trailers(self) -> CIMultiDict[str] | None:
        return self._response.trailers()

    def close(self, *, abort: bool) -> None:
        reading = self._reading
        if reading is not None:  # another thread is blocked in read: cancel that read
            reading.cancel()
        self._loop.call(self._response.close(abort=abort))


class HTTP2Options(TypedDict, total=False):
    """``HTTP2Transport``'s options, which ``SyncHTTP2Transport`` passes on; see there."""

    ssl_context: ssl.SSLContext | None
    max_connections_per_origin: int
    connect_timeout: float | None
    keepalive_interval: float | None
    keepalive_timeout: float
    idle_timeout: float
    max_header_bytes: int
    read_buffer_bytes: int


class SyncHTTP2Transport(SyncTransport):
    """HTTP/2 for ``ConnectClient``: h2c for ``http://`` URLs, TLS with ALPN for
    ``https://`` ones; the options are ``HTTP2Transport``'s. Needed for
    ``ClientOptions(protocol="grpc")``; Connect and gRPC-Web work over it too.
    ``close()`` closes its connections and stops its thread."""

    supports_trailers = True

    def __init__(self, **options: Unpack[HTTP2Options]) -> None:
        self._loop = _Loop()
        try:
            self._transport = self._loop.call(_make(options))
        except BaseException:
            self._loop.stop()
            raise

    def send(self, request: HTTPRequest) -> SyncTransportResponse:
        body = request.body
        upload = None
        if not isinstance(body, bytes):
            if not isinstance(body, Iterable):
                raise TypeError("SyncHTTP2Transport sends bytes or an iterable of byte chunks")
            upload = _Upload(self._loop.loop)
            request = dataclasses.replace(request, body=upload.chunks())
        sending = self._loop.submit(self._transport.send(request))
        if upload is not None:
            try:
                for chunk in body:
                    if sending.done():  # answered (or failed) before the body ended
                        break
                    upload.put(chunk)
            except BaseException as exc:
                upload.put(exc)
                raise
            upload.put(_END)
        response = self._loop.wait(sending, request.cancel)
        return _Response(self._loop, response, request.cancel)

    def close(self) -> None:
        if self._loop.loop.is_closed():
            return
        self._loop.call(self._transport.aclose())
        self._loop.stop()

    def __enter__(self) -> SyncHTTP2Transport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async def _make(options: HTTP2Options) -> HTTP2Transport:
    return HTTP2Transport(**options)
