"""An in-memory client transport that calls an ASGI application directly, with no sockets.

Useful for testing services: ``AsyncConnectClient(url, ASGITransport(app))`` exercises the
whole client and server protocol stack, deterministically and fast. Request bodies stream
into the app while its response streams out, so bidi calls are full-duplex here.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterable, Awaitable, Callable, MutableMapping
from typing import Any

from multidict import CIMultiDict

from connectrpc._aio.deadline import deadline_exceeded
from connectrpc._core.code import Code
from connectrpc._core.error import ConnectError
from connectrpc._transports.base import AsyncTransport, HTTPRequest, TransportResponse, async_body

__all__ = ["ASGITransport"]

ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]

_END = object()


class _CallerFailure:
    """An exception raised by the caller's own request messages (their iterator, or an
    interceptor's ``on_request``): the call fails with it as it is."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _ASGIResponse(TransportResponse):
    def __init__(
        self,
        status: int,
        headers: CIMultiDict[str],
        chunks: asyncio.Queue[object],
        app_task: asyncio.Task[None],
        pump: asyncio.Task[None] | None,
        disconnected: asyncio.Event,
        deadline: float | None,
    ) -> None:
        self.status = status
        self.headers = headers
        self._chunks = chunks
        self._task = app_task
        self._pump = pump
        self._disconnected = disconnected
        self._deadline = deadline
        self._done = False
        self.received_trailers: CIMultiDict[str] | None = None

    def trailers(self) -> CIMultiDict[str] | None:
        return self.received_trailers

    async def read(self) -> bytes:
        if self._done:
            return b""
        item = await _wait(self._chunks.get(), self._deadline)
        if item is _END:
            self._done = True
            return b""
        if isinstance(item, CIMultiDict):
            self.received_trailers = item
            self._done = True
            return b""
        if isinstance(item, _CallerFailure):
            self._done = True
            raise item.exc
        if isinstance(item, BaseException):
            raise ConnectError(Code.INTERNAL, f"application failed: {item!r}") from item
        assert isinstance(item, bytes)
        return item

    async def close(self, *, abort: bool) -> None:
        self._disconnected.set()
        if self._pump is not None:
            self._pump.cancel()
        if abort:
            self._task.cancel()
        await asyncio.gather(
            *(t for t in (self._pump, self._task) if t is not None), return_exceptions=True
        )


async def _wait(aw: Awaitable[Any], deadline: float | None) -> Any:
    if deadline is None:
        return await aw
    remaining = deadline - asyncio.get_running_loop().time()
    try:
        return await asyncio.wait_for(aw, max(remaining, 0))
    except asyncio.TimeoutError:
        raise deadline_exceeded() from None


class ASGITransport(AsyncTransport):
    """Sends each request straight into ``app`` as an ASGI ``http`` scope."""

    supports_trailers = True

    def __init__(
        self,
        app: ASGIApp,
        *,
        client: tuple[str, int] = ("127.0.0.1", 50000),
        http_version: str = "2",
    ) -> None:
        self._app = app
        self._client = client
        self._http_version = http_version

    async def send(self, request: HTTPRequest) -> TransportResponse:
        loop = asyncio.get_running_loop()
        deadline = None if request.timeout is None else loop.time() + request.timeout
        url = urllib.parse.urlsplit(request.url)
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": self._http_version,
            "method": request.method,
            "scheme": url.scheme or "http",
            "path": urllib.parse.unquote(url.path),
            "raw_path": url.path.encode(),
            "query_string": url.query.encode(),
            "root_path": "",
            "headers": [
                (k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in request.headers.items()
            ],
            "client": self._client,
            "server": (url.hostname or "testserver", url.port or 80),
            # HTTP trailers (gRPC's status) as HTTP/2 servers deliver them.
            "extensions": {"http.response.trailers": {}},
        }
        body_q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        out_q: asyncio.Queue[object] = asyncio.Queue()
        head: asyncio.Future[tuple[int, CIMultiDict[str]]] = loop.create_future()
        disconnected = asyncio.Event()
        pump: asyncio.Task[None] | None = None

        def caller_failed(exc: BaseException) -> None:
            # The request cannot be completed: the app sees the client go away, and the
            # call fails with the caller's exception.
            body_q.put_nowait({"type": "http.disconnect"})
            if not head.done():
                head.set_exception(exc)
            else:
                out_q.put_nowait(_CallerFailure(exc))

        body = async_body(request.body)
        if isinstance(body, (bytes, bytearray, memoryview)):
            body_q.put_nowait({"type": "http.request", "body": bytes(body)})
        else:
            pump = asyncio.ensure_future(_pump(body, body_q, caller_failed))

        body_done = False

        async def receive() -> dict[str, Any]:
            nonlocal body_done
            if not body_done:
                msg = await body_q.get()
                if msg["type"] == "http.request" and not msg.get("more_body", False):
                    body_done = True
                return msg
            await disconnected.wait()
            return {"type": "http.disconnect"}

        trailers_announced = False
        trailers: CIMultiDict[str] = CIMultiDict()

        async def send(msg: MutableMapping[str, Any]) -> None:
            nonlocal trailers_announced
            if msg["type"] == "http.response.start":
                headers: CIMultiDict[str] = CIMultiDict(
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in msg.get("headers", [])
                )
                trailers_announced = bool(msg.get("trailers", False))
                head.set_result((msg["status"], headers))
            elif msg["type"] == "http.response.body":
                if msg.get("body"):
                    out_q.put_nowait(bytes(msg["body"]))
                if not msg.get("more_body", False) and not trailers_announced:
                    out_q.put_nowait(_END)
            elif msg["type"] == "http.response.trailers":
                trailers.extend(
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in msg.get("headers", [])
                )
                if not msg.get("more_trailers", False):
                    out_q.put_nowait(trailers)

        async def run() -> None:
            try:
                await self._app(scope, receive, send)
            except BaseException as exc:
                if not head.done():
                    head.set_exception(exc)
                else:
                    out_q.put_nowait(exc)
                raise
            finally:
                if not head.done():
                    head.set_exception(RuntimeError("application sent no response"))
                out_q.put_nowait(_END)

        task = asyncio.ensure_future(run())
        try:
            status, headers = await _wait(asyncio.shield(head), deadline)
        except BaseException:
            disconnected.set()
            for t in (pump, task):
                if t is not None:
                    t.cancel()
            await asyncio.gather(
                *(t for t in (pump, task) if t is not None), return_exceptions=True
            )
            raise
        return _ASGIResponse(status, headers, out_q, task, pump, disconnected, deadline)


async def _pump(
    body: AsyncIterable[bytes],
    queue: asyncio.Queue[dict[str, Any]],
    failed: Callable[[BaseException], None],
) -> None:
    try:
        async for chunk in body:
            queue.put_nowait({"type": "http.request", "body": chunk, "more_body": True})
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        failed(exc)
        return
    queue.put_nowait({"type": "http.request", "body": b"", "more_body": False})
