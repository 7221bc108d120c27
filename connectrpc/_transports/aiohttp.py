"""Client transport over an ``aiohttp.ClientSession`` (HTTP/1.1).

This is the only module that knows aiohttp. It turns aiohttp's failures into coded errors:
an expired deadline is ``deadline_exceeded``, a failed or dropped connection ``unavailable``.
Response bodies are never decompressed by aiohttp (``auto_decompress=False``): compression is
the RPC protocol's business, with its own limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator

import aiohttp

from connectrpc._aio.deadline import deadline_exceeded
from connectrpc._core.code import Code
from connectrpc._core.error import ConnectError
from connectrpc._transports.base import AsyncTransport, HTTPRequest, TransportResponse, async_body

__all__ = ["AiohttpTransport"]


def _connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` was caused by the connection failing or closing before the response
    was complete. aiohttp says so only in the message of the payload error it raises then
    ("Response payload is not completed"), with the parser's complaint as its cause."""
    if str(exc).startswith("Response payload is not completed"):
        return True
    seen: BaseException | None = exc
    for _ in range(8):  # causes chain a few levels deep at most
        if seen is None:
            return False
        if isinstance(seen, (ConnectionError, aiohttp.ServerDisconnectedError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _translate(exc: BaseException) -> ConnectError:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return deadline_exceeded()
    if isinstance(exc, aiohttp.ClientPayloadError):
        if _connection_lost(exc):
            # The same event HTTP1Transport reports as unavailable: the network failed.
            return ConnectError(Code.UNAVAILABLE, f"connection lost mid-response: {exc}")
        return ConnectError(Code.INTERNAL, f"response body was cut short: {exc}")
    if isinstance(exc, aiohttp.ClientResponseError):
        return ConnectError(Code.INTERNAL, f"invalid HTTP response: {exc.message}")
    return ConnectError(Code.UNAVAILABLE, f"{type(exc).__name__}: {exc}")


_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, OSError)


class _Upload:
    """A streaming request body that remembers an error raised by the caller's own messages.

    aiohttp writes the body in a task of its own and reports any failure there as a
    connection error; the caller's exception (a bug in their request iterator, not a network
    failure) is re-raised as itself instead, as HTTP1Transport does.
    """

    __slots__ = ("error", "source")

    def __init__(self, source: AsyncIterable[bytes] | None = None) -> None:
        self.source = source
        self.error: Exception | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        assert self.source is not None
        try:
            async for chunk in self.source:
                yield chunk
        except Exception as exc:
            self.error = exc
            raise

    def failure(self, exc: BaseException) -> BaseException:
        """What to raise for ``exc``, an aiohttp error seen while this body was in use."""
        if self.error is not None:
            return self.error
        return _translate(exc)


_NO_UPLOAD = _Upload()  # for bytes bodies: nothing of the caller's runs while sending


class _AiohttpResponse(TransportResponse):
    __slots__ = ("_resp", "_upload", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse, upload: _Upload) -> None:
        self._resp = resp
        self._upload = upload
        self.status = resp.status
        self.headers = resp.headers

    async def read(self) -> bytes:
        try:
            return await self._resp.content.readany()
        except _ERRORS as exc:
            raise self._upload.failure(exc) from exc

    async def close(self, *, abort: bool) -> None:
        if abort:
            self._resp.close()
        else:
            self._resp.release()


class AiohttpTransport(AsyncTransport):
    """Sends requests through ``session``; creates (and owns) one when ``session`` is None."""

    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        self._owns_session = session is None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Our own session has no overall timeout: RPC deadlines are per call.
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    async def send(self, request: HTTPRequest) -> TransportResponse:
        session = self._get_session()
        timeout = (
            aiohttp.ClientTimeout(total=request.timeout)
            if request.timeout is not None
            else aiohttp.helpers.sentinel
        )
        body = async_body(request.body)
        upload = _NO_UPLOAD
        if not isinstance(body, (bytes, bytearray, memoryview)):
            upload = _Upload(body)
            body = upload.chunks()
        try:
            resp = await session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=body if request.method != "GET" else None,
                auto_decompress=False,
                skip_auto_headers=("Accept",),
                timeout=timeout,
            )
        except _ERRORS as exc:
            raise upload.failure(exc) from exc
        return _AiohttpResponse(resp, upload)

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None
