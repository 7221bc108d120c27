"""An in-memory sync transport that calls a WSGI application directly, with no sockets.

``ConnectClient(url, WSGITransport(app))`` runs the whole sync client and server stack in
one thread, deterministically: the request is turned into a PEP 3333 ``environ`` (the body
in ``wsgi.input``, headers as ``HTTP_*`` keys), the app is called, and its response
iterable becomes the response body, chunk by chunk, as the app produces it. The request
body is read whole first, so bidi calls are half-duplex, as over HTTP/1.1.

There is no socket to abort, so deadlines are the application's to enforce (the WSGI
application answers ``deadline_exceeded`` itself); a cancelled ``CancelToken`` fails the
next read with ``canceled`` and closes the app's response iterable.
"""

from __future__ import annotations

import io
import itertools
import sys
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from multidict import CIMultiDict

from connectrpc._core.code import Code
from connectrpc._core.error import ConnectError, canceled
from connectrpc._transports.base import HTTPRequest, SyncTransport, SyncTransportResponse, split_url

__all__ = ["WSGITransport"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_NO_ENVIRON_PREFIX = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})


@dataclass(eq=False)
class _WSGIResponse(SyncTransportResponse):
    """The app's response: its head, and its body iterable read chunk by chunk."""

    status: int
    headers: CIMultiDict[str]
    _chunks: Iterator[bytes]
    _result: Iterable[bytes]
    _cancelled: Callable[[], bool]
    _closed: bool = False

    def read(self) -> bytes:
        if self._cancelled():
            self.close(abort=True)
            raise canceled()
        if not self._closed:
            for chunk in self._chunks:
                if chunk:
                    return bytes(chunk)
            self.close(abort=False)
        return b""

    def close(self, *, abort: bool) -> None:
        if not self._closed:
            self._closed = True
            close = getattr(self._result, "close", None)
            if close is not None:
                close()


class WSGITransport(SyncTransport):
    """Sends each request to ``app`` in the calling thread."""

    def __init__(self, app: WSGIApp, *, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self._app = app
        self._client = client

    def send(self, request: HTTPRequest) -> SyncTransportResponse:
        (scheme, host, port), target, _ = split_url(request.url)
        body = request.body
        if not isinstance(body, bytes):
            if not isinstance(body, Iterable):
                raise TypeError("WSGITransport sends bytes or an iterable of byte chunks")
            body = b"".join(body)
        path, _, query = target.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote(path, encoding="latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": host,
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": self._client[0],
            "REMOTE_PORT": str(self._client[1]),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in request.headers.items():
            key = name.upper().replace("-", "_")
            if key not in _NO_ENVIRON_PREFIX:
                key = "HTTP_" + key
            if key in environ and key.startswith("HTTP_"):
                environ[key] += "," + value  # repeated fields join, as servers do
            else:
                environ[key] = value
        head: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            head[:] = [status, headers]
            return _no_write

        cancel = request.cancel
        cancelled = (lambda: False) if cancel is None else (lambda: cancel.cancelled)
        result = self._app(environ, start_response)
        chunks = iter(result)
        first = b""
        for chunk in chunks:  # the head is known by the first non-empty chunk, or the end
            if chunk:
                first = bytes(chunk)
                break
        if not head:
            raise ConnectError(Code.INTERNAL, "the WSGI application did not start a response")
        status, headers = head
        return _WSGIResponse(
            int(status.split(" ", 1)[0]),
            CIMultiDict(headers),
            itertools.chain((first,), chunks),
            result,
            cancelled,
        )


def _no_write(data: bytes) -> None:
    raise RuntimeError("WSGITransport does not support the legacy write() callable")
