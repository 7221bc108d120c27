"""The blocking client (``ConnectClient`` over ``SyncHTTP1Transport``) against our ASGI app
under uvicorn on 127.0.0.1, served from a background thread; and over ``SyncHTTP2Transport``
(every protocol, gRPC included) against it under hypercorn, over h2c.

Covers every RPC shape in both forms, errors with details and metadata, deadlines that hold
while the server stalls, cancellation from another thread (a ``CancelToken`` and closing a
stream), leaving a stream early, one client shared by many threads, and interceptors.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import uvicorn
from google.protobuf import wrappers_pb2
from hypercorn.asyncio import serve
from hypercorn.config import Config

from connectrpc.client import (
    CancelToken,
    ClientOptions,
    ConnectClient,
    SyncHTTP1Transport,
    SyncHTTP2Transport,
)
from connectrpc.errors import Code, ConnectError
from connectrpc.interceptors import Call, Interceptor
from connectrpc.method import MethodInfo, StreamType
from connectrpc.server import ConnectASGIApplication, RequestContext, server_stream_handler

from ..api._service import CONCAT, ECHO, FAIL, SLOW, SPLIT, UPPER, EchoService, S, make_app
from .test_sockets import listening_socket

TICKS: MethodInfo[S, S] = MethodInfo("test.v1.Ticks", "Stream", S, S, StreamType.SERVER_STREAM)


async def _ticks(request: S, ctx: RequestContext) -> AsyncIterator[S]:
    """One message, then another every 50 ms, forever."""
    while True:
        yield S(value="tick")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """Our ASGI app under uvicorn in a thread of its own."""
    echo = make_app(EchoService())
    app = ConnectASGIApplication([*echo.handlers, server_stream_handler(TICKS, _ticks)])
    sock = listening_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def client(url: str) -> Iterator[ConnectClient]:
    with ConnectClient(url) as client:
        yield client


def test_every_shape_in_both_forms(client: ConnectClient) -> None:
    output = client.call_unary(ECHO, S(value="hi"), extra_headers={"x-echo": "back"})
    assert output.error() is None
    assert output.message() == S(value="hi")
    assert output.response_headers()["x-echo"] == "back"
    assert output.response_trailers()["x-echo-trailer"] == "done"
    got = client.call_unary(ECHO, S(value="get"), use_get=True)
    assert got.response_headers()["x-echo-method"] == "GET"
    assert client.unary(ECHO, S(value="plain")) == S(value="plain")
    assert client.client_stream(CONCAT, [S(value="a"), S(value="b"), S(value="c")]) == S(
        value="abc"
    )
    with client.call_server_stream(SPLIT, S(value="xyz")) as stream:
        assert stream.response_headers()["x-count"] == "3"
        assert [m.value for m in stream] == ["x", "y", "z"]
        assert stream.error() is None
        assert stream.response_trailers()["x-end"] == "yes"
    assert [m.value for m in client.server_stream(SPLIT, S(value="ab"))] == ["a", "b"]
    upper = client.bidi_stream(UPPER, (S(value=w) for w in ["one", "two"]))
    assert [m.value for m in upper] == ["ONE", "TWO"]


def test_errors_carry_code_details_and_metadata(client: ConnectClient) -> None:
    output = client.call_unary(FAIL, S(value="no"))
    error = output.error()
    assert error is not None
    assert error.code is Code.FAILED_PRECONDITION
    assert error.message == "no"
    assert error.details[0].unpack(wrappers_pb2.Int32Value) == wrappers_pb2.Int32Value(value=7)
    assert error.metadata["x-why"] == "asked"
    with pytest.raises(ConnectError) as crashed:
        client.unary(FAIL, S(value="crash"))
    assert crashed.value.code is Code.INTERNAL
    assert "secret" not in crashed.value.message
    with client.call_server_stream(SPLIT, S(value="a!")) as stream:
        assert [m.value for m in stream] == ["a"]
        stream_error = stream.error()
        assert stream_error is not None
        assert stream_error.code is Code.ABORTED
    with pytest.raises(ConnectError) as raised:
        list(client.server_stream(SPLIT, S(value="!")))
    assert raised.value.code is Code.ABORTED


def test_deadline_holds_while_the_server_stalls(client: ConnectClient) -> None:
    started = time.monotonic()
    output = client.call_unary(SLOW, S(value="10"), timeout_seconds=0.3)
    elapsed = time.monotonic() - started
    error = output.error()
    assert error is not None
    assert error.code is Code.DEADLINE_EXCEEDED
    assert elapsed < 2.0
    with client.call_server_stream(TICKS, S(), timeout_seconds=0.3) as stream:
        ticks = [m.value for m in stream]
        stream_error = stream.error()
    assert ticks
    assert stream_error is not None
    assert stream_error.code is Code.DEADLINE_EXCEEDED
    assert client.unary(ECHO, S(value="after")) == S(value="after")


def test_cancel_token_from_another_thread(client: ConnectClient) -> None:
    token = CancelToken()
    threading.Timer(0.2, token.cancel).start()
    started = time.monotonic()
    output = client.call_unary(SLOW, S(value="10"), cancel=token)
    error = output.error()
    assert error is not None
    assert error.code is Code.CANCELED
    assert time.monotonic() - started < 2.0
    already = client.call_unary(ECHO, S(value="x"), cancel=token)
    already_error = already.error()
    assert already_error is not None
    assert already_error.code is Code.CANCELED


def test_stream_closed_from_another_thread_ends_the_loop(url: str) -> None:
    with ConnectClient(url, SyncHTTP1Transport(max_connections_per_origin=1)) as client:
        stream = client.call_server_stream(TICKS, S())
        threading.Timer(0.3, stream.close).start()
        started = time.monotonic()
        received = sum(1 for _ in stream)
        assert received >= 1
        assert time.monotonic() - started < 2.0
        error = stream.error()
        assert error is not None
        assert error.code is Code.CANCELED
        # The one connection was freed: the next call does not wait for it.
        assert client.unary(ECHO, S(value="next"), timeout_seconds=2) == S(value="next")


def test_leaving_a_stream_early_frees_its_connection(url: str) -> None:
    with ConnectClient(url, SyncHTTP1Transport(max_connections_per_origin=1)) as client:
        for _ in range(3):
            for message in client.server_stream(TICKS, S()):
                assert message.value == "tick"
                break
            with client.call_server_stream(TICKS, S()) as stream:
                next(stream)
        assert client.unary(ECHO, S(value="free"), timeout_seconds=2) == S(value="free")


def test_one_client_shared_by_threads(client: ConnectClient) -> None:
    def calls(n: int) -> list[str]:
        return [client.unary(ECHO, S(value=f"{n}-{i}")).value for i in range(20)]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(calls, range(8)))
    assert results == [[f"{n}-{i}" for i in range(20)] for n in range(8)]


class _Recorder(Interceptor):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_start(self, call: Call) -> None:
        call.request_headers["x-echo"] = "from-interceptor"
        self.seen.append(f"start {call.method.name}")

    def on_response(self, call: Call, message: wrappers_pb2.StringValue) -> None:  # type: ignore[override]
        self.seen.append(f"response {message.value}")

    def on_end(self, call: Call, error: ConnectError | None) -> None:
        self.seen.append(f"end {None if error is None else error.code.value}")


class _AsyncHook(Interceptor):
    async def on_start(self, call: Call) -> None:
        return None


def test_interceptors_run_plain_hooks(url: str) -> None:
    recorder = _Recorder()
    options = ClientOptions(interceptors=[recorder])
    with ConnectClient(url, options=options) as client:
        output = client.call_unary(ECHO, S(value="i"))
        assert output.response_headers()["x-echo"] == "from-interceptor"
        assert [m.value for m in client.server_stream(SPLIT, S(value="ab"))] == ["a", "b"]
        client.call_unary(FAIL, S(value="no"))
    assert recorder.seen == [
        "start Echo",
        "response i",
        "end None",
        "start Split",
        "response a",
        "response b",
        "end None",
        "start Fail",
        "end failed_precondition",
    ]
    with pytest.raises(TypeError, match=r"_AsyncHook\.on_start is async.*plain"):
        ConnectClient(url, options=ClientOptions(interceptors=[_AsyncHook()]))


def test_usage_errors_name_the_fix(url: str) -> None:
    with pytest.raises(ValueError, match="HTTP2Transport"):
        ConnectClient(url, options=ClientOptions(protocol="grpc"))
    with pytest.raises(TypeError, match="SyncTransport"):
        ConnectClient(url, object())  # type: ignore[arg-type]

    async def messages() -> AsyncIterator[S]:
        yield S(value="a")

    with ConnectClient(url) as client, pytest.raises(TypeError, match="plain iterables"):
        client.client_stream(CONCAT, messages())  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def h2c_url() -> Iterator[str]:
    """Our ASGI app under hypercorn (HTTP/2 with prior knowledge, trailers) in a thread."""
    echo = make_app(EchoService())
    app = ConnectASGIApplication([*echo.handlers, server_stream_handler(TICKS, _ticks)])
    sock = listening_socket()
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def serving() -> None:
        loop.run_until_complete(serve(app, config, shutdown_trigger=stop.wait))

    thread = threading.Thread(target=serving, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:  # the socket accepts before hypercorn serves: wait for an answer
        try:
            with ConnectClient(url) as probe:
                probe.unary(ECHO, S(value="up"), timeout_seconds=1)
            break
        except ConnectError:
            assert time.monotonic() < deadline, "hypercorn did not start"
            time.sleep(0.05)
    yield url
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


@pytest.mark.parametrize("protocol", ["grpc", "connect", "grpc-web"])
def test_http2_and_grpc(h2c_url: str, protocol: str) -> None:
    options = ClientOptions(protocol=protocol)
    with ConnectClient(h2c_url, SyncHTTP2Transport(), options=options) as client:
        output = client.call_unary(ECHO, S(value="hi"))
        assert output.message() == S(value="hi")
        assert output.response_trailers()["x-echo-trailer"] == "done"
        assert client.client_stream(CONCAT, (S(value=c) for c in "abc")) == S(value="abc")
        with client.call_server_stream(SPLIT, S(value="xy")) as stream:
            assert [m.value for m in stream] == ["x", "y"]
            assert stream.response_trailers()["x-end"] == "yes"
        assert [m.value for m in client.bidi_stream(UPPER, [S(value="q")])] == ["Q"]
        failed = client.call_unary(FAIL, S(value="no")).error()
        assert failed is not None
        assert failed.code is Code.FAILED_PRECONDITION
        started = time.monotonic()
        late = client.call_unary(SLOW, S(value="10"), timeout_seconds=0.3).error()
        assert late is not None
        assert late.code is Code.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 2.0


def test_http2_cancellation_from_another_thread(h2c_url: str) -> None:
    threads_before = threading.active_count()
    options = ClientOptions(protocol="grpc")
    with ConnectClient(h2c_url, SyncHTTP2Transport(), options=options) as client:
        token = CancelToken()
        threading.Timer(0.2, token.cancel).start()
        error = client.call_unary(SLOW, S(value="10"), cancel=token).error()
        assert error is not None
        assert error.code is Code.CANCELED
        stream = client.call_server_stream(TICKS, S())
        threading.Timer(0.3, stream.close).start()
        assert sum(1 for _ in stream) >= 1
        stream_error = stream.error()
        assert stream_error is not None
        assert stream_error.code is Code.CANCELED
        assert client.unary(ECHO, S(value="after")) == S(value="after")
    deadline = time.monotonic() + 5
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.01)  # the Timer threads end, and close() stopped the loop's thread
    assert threading.active_count() <= threads_before
