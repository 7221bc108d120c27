"""ConnectWSGIApplication called in process: a PEP 3333 environ in, the response out.

``wsgi_call`` plays the WSGI server and checks what PEP 3333 asks of the application (native
strings for the status and headers, ``start_response`` once and before the first body chunk,
bytes in the body, ``close()`` honoured); the service is ``_service.SyncEchoService``.
Covers the four stream types, Connect GET, gRPC-Web, errors with details, deadlines (answered
at the deadline, seen by the handler), interceptors, refused gRPC, and the construction
errors that keep sync and async handlers apart.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from google.protobuf import wrappers_pb2
from google.protobuf.message import Message

from connectrpc.errors import Code, ConnectError
from connectrpc.interceptors import Call, Interceptor
from connectrpc.method import MethodInfo, StreamType
from connectrpc.server import (
    ConnectASGIApplication,
    ConnectWSGIApplication,
    RequestContext,
    ServerOptions,
    sync_unary_handler,
    unary_handler,
)

from ._service import CONCAT, ECHO, FAIL, SLOW, SPLIT, UPPER, S, SyncEchoService, make_wsgi_app

UNARY = {"content-type": "application/proto", "connect-protocol-version": "1"}
STREAM = {"content-type": "application/connect+proto", "connect-protocol-version": "1"}
GRPC_WEB = {"content-type": "application/grpc-web+proto"}


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    chunks: list[bytes]
    first_chunk_after: float  # seconds from the call to the first body chunk

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def json(self) -> Any:
        return json.loads(self.body)

    def frames(self) -> list[tuple[int, bytes]]:
        body, out, pos = self.body, [], 0
        while pos < len(body):
            flags, length = struct.unpack(">BI", body[pos : pos + 5])
            out.append((flags, body[pos + 5 : pos + 5 + length]))
            pos += 5 + length
        return out

    def messages(self) -> list[str]:
        return [S.FromString(data).value for flags, data in self.frames() if flags == 0]

    def end_stream(self) -> Any:
        flags, data = self.frames()[-1]
        assert flags == 2, "a Connect stream ends with an end-of-stream message"
        return json.loads(data)


def environ(
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    method: str = "POST",
    query: bytes = b"",
    *,
    chunked: bool = False,
) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if chunked:
        env["wsgi.input_terminated"] = True
    else:
        env["CONTENT_LENGTH"] = str(len(body))
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        env[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    return env


def wsgi_call(app: Any, env: dict[str, Any]) -> Response:
    """Run one request through ``app`` as a WSGI server would, checking PEP 3333's rules."""
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        assert not started, "start_response called twice"
        assert type(status) is str
        assert status[:3].isdigit(), status
        assert status[3] == " ", status
        assert type(headers) is list
        for name, value in headers:
            assert type(name) is str
            assert type(value) is str
            assert name.lower() not in ("connection", "keep-alive", "transfer-encoding")
        started.append((status, headers))
        return lambda data: None

    begin = time.monotonic()
    result: Iterable[bytes] = app(env, start_response)
    chunks: list[bytes] = []
    first = 0.0
    try:
        for chunk in result:
            assert type(chunk) is bytes
            assert started, "a body chunk before start_response"
            if not chunks:
                first = time.monotonic() - begin
            chunks.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started[0]
    return Response(int(status.split()[0]), {k.lower(): v for k, v in headers}, chunks, first)


def call(
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    app: Any = None,
    **kwargs: Any,
) -> Response:
    return wsgi_call(app or make_wsgi_app(), environ(path, headers, body, **kwargs))


def env(flags: int, data: bytes) -> bytes:
    return struct.pack(">BI", flags, len(data)) + data


def msg(value: str) -> bytes:
    return S(value=value).SerializeToString()


# --- the four stream types ----------------------------------------------------------------


def test_unary() -> None:
    res = call(ECHO.procedure, UNARY, msg("hi"))
    assert res.status == 200
    assert S.FromString(res.body).value == "hi"
    assert res.headers["x-echo-method"] == "POST"
    assert res.headers["trailer-x-echo-trailer"] == "done"


def test_unary_json_and_chunked_body() -> None:
    headers = {**UNARY, "content-type": "application/json"}
    res = call(ECHO.procedure, headers, b'"hi"', chunked=True)
    assert res.status == 200
    assert res.json() == "hi"


def test_connect_get() -> None:
    query = b"encoding=proto&base64=1&connect=v1&message=" + base64.urlsafe_b64encode(msg("g"))
    res = call(ECHO.procedure, {}, method="GET", query=query)
    assert res.status == 200
    assert S.FromString(res.body).value == "g"
    assert res.headers["x-echo-method"] == "GET"


def test_client_stream() -> None:
    body = env(0, msg("a")) + env(0, msg("b")) + env(0, msg("c"))
    res = call(CONCAT.procedure, STREAM, body)
    assert res.messages() == ["abc"]
    assert res.end_stream() == {}


def test_server_stream_sends_each_message_as_its_own_chunk() -> None:
    res = call(SPLIT.procedure, STREAM, env(0, msg("abc")))
    assert res.status == 200
    assert res.headers["x-count"] == "3"
    assert res.messages() == ["a", "b", "c"]
    assert res.end_stream()["metadata"] == {"x-end": ["yes"]}
    assert len(res.chunks) == 4, "each message, then the end of stream, is its own chunk"


def test_half_duplex_bidi() -> None:
    body = env(0, msg("x")) + env(0, msg("y"))
    res = call(UPPER.procedure, STREAM, body)
    assert res.messages() == ["X", "Y"]


def test_grpc_web_server_stream_and_trailers_in_body() -> None:
    res = call(SPLIT.procedure, GRPC_WEB, env(0, msg("ab")))
    assert res.status == 200
    frames = res.frames()
    assert [S.FromString(d).value for f, d in frames[:-1]] == ["a", "b"]
    flags, trailers = frames[-1]
    assert flags == 0x80
    assert b"grpc-status: 0" in trailers


def test_grpc_is_refused_with_the_fix() -> None:
    res = call(ECHO.procedure, {"content-type": "application/grpc"}, env(0, msg("x")))
    assert res.status == 200
    assert res.headers["grpc-status"] == str(Code.UNAVAILABLE.grpc_value)
    message = res.headers["grpc-message"]
    assert "trailers" in message
    assert "gRPC-Web" in message


# --- errors -----------------------------------------------------------------------------------


def test_error_with_details() -> None:
    res = call(FAIL.procedure, UNARY, msg("nope"))
    assert res.status == 400
    error = res.json()
    assert error["code"] == "failed_precondition"
    assert error["message"] == "nope"
    assert error["details"][0]["type"] == "google.protobuf.Int32Value"
    assert res.headers["trailer-x-why"] == "asked"


def test_unexpected_exception_is_internal_without_leak(caplog: pytest.LogCaptureFixture) -> None:
    res = call(FAIL.procedure, UNARY, msg("crash"))
    assert res.status == 500
    assert res.json()["code"] == "internal"
    assert "secret" not in res.body.decode()
    assert "secret internal detail" in caplog.text


def test_stream_error_after_messages() -> None:
    res = call(SPLIT.procedure, STREAM, env(0, msg("a!")))
    assert res.messages() == ["a"]
    end = res.end_stream()
    assert end["error"]["code"] == "aborted"
    assert end["metadata"]["x-at"] == ["bang"]


def test_wrong_response_type_is_internal(caplog: pytest.LogCaptureFixture) -> None:
    method: MethodInfo[S, S] = MethodInfo("t.S", "U", S, S, StreamType.UNARY)
    app = ConnectWSGIApplication(
        [sync_unary_handler(method, lambda r, c: wrappers_pb2.Int32Value())]  # type: ignore[arg-type, return-value]
    )
    res = call("/t.S/U", UNARY, msg(""), app=app)
    assert res.json()["code"] == "internal"
    assert "expected StringValue" in caplog.text


def test_unknown_method_404() -> None:
    assert call("/test.v1.EchoService/Nope", UNARY).status == 404


def test_message_over_limit() -> None:
    app = make_wsgi_app(options=ServerOptions(read_max_bytes=1000))
    res = call(ECHO.procedure, UNARY, msg("x" * 2000), app=app)
    assert res.status == 429
    assert res.json()["code"] == "resource_exhausted"
    res = call(CONCAT.procedure, STREAM, env(0, msg("x" * 2000)), app=app)
    assert res.end_stream()["error"]["code"] == "resource_exhausted"


# --- deadlines --------------------------------------------------------------------------------


def test_deadline_is_answered_at_the_deadline_and_the_handler_is_told() -> None:
    service = SyncEchoService()
    headers = {**UNARY, "connect-timeout-ms": "200"}
    begin = time.monotonic()
    res = call(SLOW.procedure, headers, msg("5"), app=make_wsgi_app(service))
    took = time.monotonic() - begin
    assert res.status == 504
    assert res.json()["code"] == "deadline_exceeded"
    assert 0.15 < took < 1.0, took
    assert service.gave_up.wait(2), "the handler must see ctx.is_cancelled()"
    remaining = service.remaining[0]
    assert remaining is not None
    assert 0.1 < remaining <= 0.2


def test_handler_within_its_deadline_succeeds() -> None:
    service = SyncEchoService()
    headers = {**UNARY, "connect-timeout-ms": "2000"}
    res = call(SLOW.procedure, headers, msg("0.05"), app=make_wsgi_app(service))
    assert res.status == 200
    assert S.FromString(res.body).value == "late"
    assert service.remaining[0] is not None


def test_no_deadline_runs_in_the_server_thread() -> None:
    seen: list[threading.Thread] = []

    def where(request: S, ctx: RequestContext) -> S:
        seen.append(threading.current_thread())
        assert ctx.timeout_remaining() is None
        return S()

    app = ConnectWSGIApplication([sync_unary_handler(ECHO, where)])
    assert call(ECHO.procedure, UNARY, msg(""), app=app).status == 200
    assert seen == [threading.current_thread()]


def test_stream_deadline_ends_the_stream_with_deadline_exceeded() -> None:
    headers = {**STREAM, "connect-timeout-ms": "300"}
    begin = time.monotonic()
    res = call(SPLIT.procedure, headers, env(0, msg("ab~c")))
    took = time.monotonic() - begin
    assert res.messages() == ["a", "b"]
    assert res.end_stream()["error"]["code"] == "deadline_exceeded"
    assert took < 1.5, took
    assert res.first_chunk_after < 0.25, "messages before the stall go out at once"


def test_grpc_web_deadline() -> None:
    headers = {**GRPC_WEB, "grpc-timeout": "200m"}
    res = call(SLOW.procedure, headers, env(0, msg("5")))
    trailers = res.frames()[-1][1]
    assert f"grpc-status: {Code.DEADLINE_EXCEEDED.grpc_value}".encode() in trailers


# --- interceptors -----------------------------------------------------------------------------


class Recorder(Interceptor):
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def on_start(self, call: Call) -> None:
        self.log.append("start")

    def on_request(self, call: Call, message: Message) -> Message:
        assert isinstance(message, S)
        self.log.append(f"request:{message.value}")
        return S(value=message.value + "!")

    def on_response(self, call: Call, message: Message) -> None:
        assert isinstance(message, S)
        self.log.append(f"response:{message.value}")

    def on_end(self, call: Call, error: ConnectError | None) -> None:
        self.log.append(f"end:{error.code.value if error else 'ok'}")


@pytest.mark.parametrize(
    ("path", "headers", "body", "expected"),
    [
        (ECHO.procedure, UNARY, msg("u"), ["start", "request:u", "response:u!", "end:ok"]),
        (
            CONCAT.procedure,
            STREAM,
            env(0, msg("a")) + env(0, msg("b")),
            ["start", "request:a", "request:b", "response:a!b!", "end:ok"],
        ),
        (
            SPLIT.procedure,
            STREAM,
            env(0, msg("xy")),
            ["start", "request:xy", "response:x", "response:y", "end:aborted"],
        ),
        (
            UPPER.procedure,
            STREAM,
            env(0, msg("p")),
            ["start", "request:p", "response:P!", "end:ok"],
        ),
        (FAIL.procedure, UNARY, msg("no"), ["start", "request:no", "end:failed_precondition"]),
    ],
)
def test_sync_interceptors_see_every_stream_type(
    path: str, headers: dict[str, str], body: bytes, expected: list[str]
) -> None:
    log: list[str] = []
    app = make_wsgi_app(options=ServerOptions(interceptors=[Recorder(log)]))
    res = call(path, headers, body, app=app)
    assert res.status in (200, 400)
    assert log == expected


def test_async_interceptor_hook_is_refused() -> None:
    class Async(Interceptor):
        async def on_start(self, call: Call) -> None:
            return None

    with pytest.raises(TypeError, match="is async"):
        make_wsgi_app(options=ServerOptions(interceptors=[Async()]))


def test_awaitable_from_a_hook_fails_the_call(caplog: pytest.LogCaptureFixture) -> None:
    class Waits(Interceptor):
        def on_start(self, call: Call) -> Any:
            return _Suspends()

    app = make_wsgi_app(options=ServerOptions(interceptors=[Waits()]))
    res = call(ECHO.procedure, UNARY, msg("x"), app=app)
    assert res.json()["code"] == "internal"
    assert "TypeError" in caplog.text
    assert "plain function" in caplog.text


class _Suspends:
    """An awaitable that waits (as a future would): a sync server has nothing to wait with."""

    def __await__(self) -> Iterator[None]:
        yield None


# --- sync and async kept apart --------------------------------------------------------------


def test_async_handler_is_refused_by_the_wsgi_app() -> None:
    async def echo(request: S, ctx: RequestContext) -> S:
        return request

    with pytest.raises(TypeError, match="sync_unary_handler"):
        ConnectWSGIApplication([unary_handler(ECHO, echo)])


def test_sync_handler_is_refused_by_the_asgi_app() -> None:
    with pytest.raises(TypeError, match="ConnectWSGIApplication"):
        ConnectASGIApplication([sync_unary_handler(ECHO, SyncEchoService().echo)])


def test_sync_factory_checks_the_stream_type() -> None:
    with pytest.raises(ValueError, match="sync_server_stream_handler"):
        sync_unary_handler(SPLIT, SyncEchoService().echo)
