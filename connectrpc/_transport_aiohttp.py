"""Client transport over an ``aiohttp.ClientSession`` (HTTP/1.1).

This is the only module that knows aiohttp. It turns aiohttp's failures into coded errors:
an expired deadline is ``deadline_exceeded``, a failed or dropped connection ``unavailable``.
Response bodies are never decompressed by aiohttp (``auto_decompress=False``): compression is
the RPC protocol's business, with its own limits.
"""

from __future__ import annotations

import asyncio

import aiohttp

from ._code import Code
from ._deadline import deadline_exceeded
from ._error import ConnectError
from ._transport import AsyncTransport, HTTPRequest, TransportResponse

__all__ = ["AiohttpTransport"]


def _translate(exc: BaseException) -> ConnectError:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return deadline_exceeded()
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ConnectError(Code.INTERNAL, f"response body was cut short: {exc}")
    if isinstance(exc, aiohttp.ClientResponseError):
        return ConnectError(Code.INTERNAL, f"invalid HTTP response: {exc.message}")
    return ConnectError(Code.UNAVAILABLE, f"{type(exc).__name__}: {exc}")


_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, OSError)


class _AiohttpResponse(TransportResponse):
    __slots__ = ("_resp", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers = resp.headers

    async def read(self) -> bytes:
        try:
            return await self._resp.content.readany()
        except _ERRORS as exc:
            raise _translate(exc) from exc

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
        try:
            resp = await session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body if request.method != "GET" else None,
                auto_decompress=False,
                skip_auto_headers=("Accept",),
                timeout=timeout,
            )
        except _ERRORS as exc:
            raise _translate(exc) from exc
        return _AiohttpResponse(resp)

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None
