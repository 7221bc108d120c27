"""The blocking client against a WSGI app in memory (``connectrpc.testing.WSGITransport``).

The sync twin of ``test_roundtrip``'s layer: every RPC shape through the public API, no
sockets, for each protocol the sync stack speaks (Connect and gRPC-Web) and both codecs,
plus errors with details, deadlines and interceptors on both sides.
"""

from __future__ import annotations

import time

import pytest
from google.protobuf import wrappers_pb2

from connectrpc.client import ClientOptions, ConnectClient
from connectrpc.errors import Code, ConnectError
from connectrpc.interceptors import Call, Interceptor
from connectrpc.server import (
    ServerOptions,
)
from connectrpc.testing import WSGITransport

from ._service import CONCAT, ECHO, FAIL, SLOW, SPLIT, UPPER, S, SyncEchoService, make_wsgi_app


@pytest.mark.parametrize("codec", ["proto", "json"])
@pytest.mark.parametrize("protocol", ["connect", "grpc-web"])
@pytest.mark.parametrize("compression", [None, "gzip"])
def test_every_shape(protocol: str, codec: str, compression: str | None) -> None:
    options = ClientOptions(protocol=protocol, codec=codec, send_compression=compression)
    client = ConnectClient("http://test", WSGITransport(make_wsgi_app()), options=options)
    output = client.call_unary(ECHO, S(value="hi"))
    assert output.message() == S(value="hi")
    assert output.response_trailers()["x-echo-trailer"] == "done"
    assert client.client_stream(CONCAT, [S(value="a"), S(value="b")]) == S(value="ab")
    with client.call_server_stream(SPLIT, S(value="xy")) as stream:
        assert stream.response_headers()["x-count"] == "2"
        assert [m.value for m in stream] == ["x", "y"]
        assert stream.error() is None
        assert stream.response_trailers()["x-end"] == "yes"
    assert [m.value for m in client.bidi_stream(UPPER, [S(value="q")])] == ["Q"]
    error = client.call_unary(FAIL, S(value="no")).error()
    assert error is not None
    assert error.code is Code.FAILED_PRECONDITION
    assert error.details[0].unpack(wrappers_pb2.Int32Value) == wrappers_pb2.Int32Value(value=7)
    assert error.metadata["x-why"] == "asked"
    with client.call_server_stream(SPLIT, S(value="a!b")) as stream:
        assert [m.value for m in stream] == ["a"]
        stream_error = stream.error()
        assert stream_error is not None
        assert stream_error.code is Code.ABORTED


def test_get_and_its_fallback() -> None:
    client = ConnectClient("http://test", WSGITransport(make_wsgi_app()))
    output = client.call_unary(ECHO, S(value="g"), use_get=True)
    assert output.response_headers()["x-echo-method"] == "GET"
    big = client.call_unary(ECHO, S(value="x" * 20_000), use_get=True)
    assert big.response_headers()["x-echo-method"] == "POST"
    assert big.message() == S(value="x" * 20_000)


def test_the_server_answers_at_the_deadline() -> None:
    service = SyncEchoService()
    client = ConnectClient("http://test", WSGITransport(make_wsgi_app(service)))
    started = time.monotonic()
    output = client.call_unary(SLOW, S(value="0.5"), timeout_seconds=0.1)
    elapsed = time.monotonic() - started
    error = output.error()
    assert error is not None
    assert error.code is Code.DEADLINE_EXCEEDED
    assert elapsed < 0.45  # answered at the deadline, not when the handler returned
    assert service.gave_up.wait(5)  # the handler saw that its call was given up


class _Tag(Interceptor):
    def __init__(self, side: str, log: list[str]) -> None:
        self.side = side
        self.log = log

    def on_start(self, call: Call) -> None:
        self.log.append(f"{self.side} start {call.method.name}")

    def on_end(self, call: Call, error: ConnectError | None) -> None:
        self.log.append(f"{self.side} end {None if error is None else error.code.value}")


def test_interceptors_on_both_sides() -> None:
    log: list[str] = []
    app = make_wsgi_app(options=ServerOptions(interceptors=[_Tag("server", log)]))
    options = ClientOptions(interceptors=[_Tag("client", log)])
    client = ConnectClient("http://test", WSGITransport(app), options=options)
    assert client.unary(ECHO, S(value="i")) == S(value="i")
    assert [m.value for m in client.server_stream(SPLIT, S(value="ab"))] == ["a", "b"]
    assert log == [
        "client start Echo",
        "server start Echo",
        "server end None",
        "client end None",
        "client start Split",
        "server start Split",
        "server end None",
        "client end None",
    ]
