"""``connectrpc.otel`` over the in-memory transport, with the OpenTelemetry SDK's in-memory
exporters: spans, their attributes, status and events, one trace across client and server,
and the metrics, for success, errors, deadlines and cancelled streams.

Every test builds its own tracer and meter providers; nothing sets OpenTelemetry's globals.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from connectrpc.client import AsyncConnectClient, ClientOptions, HTTP1Transport
from connectrpc.errors import Code, ConnectError
from connectrpc.interceptors import Call, Interceptor
from connectrpc.method import MethodInfo, StreamType
from connectrpc.otel import OpenTelemetryInterceptor
from connectrpc.server import (
    ConnectASGIApplication,
    RequestContext,
    ServerOptions,
    server_stream_handler,
    unary_handler,
)
from connectrpc.testing import ASGITransport

from ..integration.test_sockets import _hypercorn
from ._service import CONCAT, ECHO, FAIL, SERVICE, SLOW, SPLIT, UPPER, EchoService, S, make_app


@dataclass
class Telemetry:
    """Isolated providers and what they collected."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def interceptor(self, **options: Any) -> OpenTelemetryInterceptor:
        return OpenTelemetryInterceptor(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **options
        )

    async def ended(self, count: int) -> tuple[ReadableSpan, ...]:
        """The first ``count`` spans to end, once they have (a server's may end after the
        client's call returned)."""
        for _ in range(200):
            if len(self.spans.get_finished_spans()) >= count:
                break
            await asyncio.sleep(0.01)
        spans = self.spans.get_finished_spans()
        assert len(spans) == count, spans
        return spans

    async def finished(self) -> tuple[ReadableSpan, ReadableSpan]:
        """The client and the server span of the one call made."""
        spans = await self.ended(2)
        (client,) = [s for s in spans if s.kind is SpanKind.CLIENT]
        (server,) = [s for s in spans if s.kind is SpanKind.SERVER]
        return client, server

    def points(self) -> dict[str, tuple[str, list[HistogramDataPoint]]]:
        """Each metric's unit and histogram points, by name."""
        data = self.metrics.get_metrics_data()
        assert data is not None
        found: dict[str, tuple[str, list[HistogramDataPoint]]] = {}
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                assert scope.scope.name == "connectrpc.otel"
                assert scope.schema_url == "https://opentelemetry.io/schemas/1.37.0"
                for metric in scope.metrics:
                    points = [
                        p for p in metric.data.data_points if isinstance(p, HistogramDataPoint)
                    ]
                    assert len(points) == len(metric.data.data_points)
                    found[metric.name] = (metric.unit or "", points)
        return found


@pytest.fixture
def otel() -> Telemetry:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    return Telemetry(tracer_provider, MeterProvider(metric_readers=[reader]), spans, reader)


@pytest.fixture(params=["connect", "grpc-web"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_client(
    client: Sequence[Interceptor] = (),
    server: Sequence[Interceptor] = (),
    *,
    protocol: str = "connect",
    service: EchoService | None = None,
    app: ConnectASGIApplication | None = None,
) -> AsyncConnectClient:
    if app is None:
        app = make_app(service or EchoService(), ServerOptions(interceptors=server))
    options = ClientOptions(protocol=protocol, interceptors=client)
    return AsyncConnectClient("http://test:8080", ASGITransport(app), options=options)


def traced_client(
    otel: Telemetry, protocol: str = "connect", service: EchoService | None = None, **options: Any
) -> AsyncConnectClient:
    return make_client(
        [otel.interceptor(**options)],
        [otel.interceptor(trust_remote=True, **options)],
        protocol=protocol,
        service=service,
    )


def outcome(span: ReadableSpan) -> object:
    """The status attribute of the span's protocol."""
    attributes = span.attributes or {}
    if attributes["rpc.system"] == "grpc":
        return attributes["rpc.grpc.status_code"]
    return attributes.get("rpc.connect_rpc.error_code")


def assert_one_trace(client: ReadableSpan, server: ReadableSpan) -> None:
    assert client.context is not None
    assert server.context is not None
    assert server.context.trace_id == client.context.trace_id
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id
    assert server.parent.is_remote


# --- spans ---------------------------------------------------------------------------------


async def test_unary_is_one_trace(otel: Telemetry, protocol: str) -> None:
    client = traced_client(otel, protocol)
    assert await client.unary(ECHO, S(value="hi")) == S(value="hi")
    client_span, server_span = await otel.finished()
    assert_one_trace(client_span, server_span)
    system = "connect_rpc" if protocol == "connect" else "grpc"
    for span in (client_span, server_span):
        assert span.name == "test.v1.EchoService/Echo"
        assert span.status.status_code is StatusCode.UNSET
        assert span.events == ()
        assert span.attributes is not None
        assert span.attributes["rpc.system"] == system
        assert span.attributes["rpc.service"] == SERVICE
        assert span.attributes["rpc.method"] == "Echo"
    assert dict(client_span.attributes or {}) == {
        "rpc.system": system,
        "rpc.service": SERVICE,
        "rpc.method": "Echo",
        "server.address": "test",
        "server.port": 8080,
        **({"rpc.grpc.status_code": 0} if system == "grpc" else {}),
    }
    assert dict(server_span.attributes or {}) == {
        "rpc.system": system,
        "rpc.service": SERVICE,
        "rpc.method": "Echo",
        "client.address": "127.0.0.1",
        "client.port": 50000,
        **({"rpc.grpc.status_code": 0} if system == "grpc" else {}),
    }


async def test_error_is_an_error_for_the_client_only(otel: Telemetry, protocol: str) -> None:
    """failed_precondition: the client's call failed, the server worked as it should."""
    out = await traced_client(otel, protocol).call_unary(FAIL, S(value="no way"))
    error = out.error()
    assert error is not None
    assert error.code is Code.FAILED_PRECONDITION
    client_span, server_span = await otel.finished()
    assert_one_trace(client_span, server_span)
    expected = "failed_precondition" if protocol == "connect" else 9
    assert outcome(client_span) == outcome(server_span) == expected
    assert client_span.status.status_code is StatusCode.ERROR
    assert client_span.status.description == "no way"
    assert server_span.status.status_code is StatusCode.UNSET


async def test_server_fault_is_an_error_on_both_sides(otel: Telemetry, protocol: str) -> None:
    out = await traced_client(otel, protocol).call_unary(FAIL, S(value="crash"))
    error = out.error()
    assert error is not None
    assert error.code is Code.INTERNAL
    client_span, server_span = await otel.finished()
    expected = "internal" if protocol == "connect" else 13
    assert outcome(client_span) == outcome(server_span) == expected
    assert client_span.status.status_code is StatusCode.ERROR
    assert server_span.status.status_code is StatusCode.ERROR
    # The handler's exception text stays out of telemetry, as it stays off the wire.
    assert "secret" not in str(server_span.status.description)


async def test_deadline_exceeded(otel: Telemetry, protocol: str) -> None:
    service = EchoService()
    out = await traced_client(otel, protocol, service).call_unary(
        SLOW, S(value="5"), timeout_seconds=0.05
    )
    error = out.error()
    assert error is not None
    assert error.code is Code.DEADLINE_EXCEEDED
    await asyncio.wait_for(service.cancelled.wait(), 5)
    client_span, server_span = await otel.finished()
    assert_one_trace(client_span, server_span)
    expected = "deadline_exceeded" if protocol == "connect" else 4
    assert outcome(client_span) == outcome(server_span) == expected
    assert client_span.status.status_code is StatusCode.ERROR
    assert server_span.status.status_code is StatusCode.ERROR


async def test_stream_closed_early_is_cancelled(otel: Telemetry, protocol: str) -> None:
    client = traced_client(otel, protocol, message_events=True)
    output = await client.call_server_stream(SPLIT, S(value="abcdef"))
    async with output:
        async for message in output:
            assert message.value == "a"
            break
    client_span, server_span = await otel.finished()
    assert_one_trace(client_span, server_span)
    # The conventions spell Connect's "canceled" as "cancelled".
    assert outcome(client_span) == ("cancelled" if protocol == "connect" else 1)
    assert client_span.status.status_code is StatusCode.ERROR
    received = [
        e for e in client_span.events if (e.attributes or {})["rpc.message.type"] == "RECEIVED"
    ]
    assert len(received) == 1
    # The server may have written every message before it noticed; either way it did not
    # fail, and cancellation is not the server's error.
    assert outcome(server_span) in (("cancelled", None) if protocol == "connect" else (1, 0))
    assert server_span.status.status_code is StatusCode.UNSET


FOREVER: MethodInfo[S, S] = MethodInfo(SERVICE, "Forever", S, S, StreamType.SERVER_STREAM)


async def test_client_leaving_a_stream_cancels_the_server_span(
    otel: Telemetry, protocol: str
) -> None:
    stopped = asyncio.Event()

    async def forever(request: S, ctx: RequestContext) -> AsyncIterator[S]:
        try:
            while True:
                yield S(value="tick")
                await asyncio.sleep(0.01)
        finally:
            stopped.set()

    app = ConnectASGIApplication(
        [server_stream_handler(FOREVER, forever)],
        options=ServerOptions(interceptors=[otel.interceptor(trust_remote=True)]),
    )
    client = make_client([otel.interceptor()], app=app, protocol=protocol)
    output = await client.call_server_stream(FOREVER, S())
    async with output:
        async for message in output:
            assert message.value == "tick"
            break
    await asyncio.wait_for(stopped.wait(), 5)
    client_span, server_span = await otel.finished()
    assert_one_trace(client_span, server_span)
    cancelled = "cancelled" if protocol == "connect" else 1
    assert outcome(client_span) == outcome(server_span) == cancelled
    assert client_span.status.status_code is StatusCode.ERROR
    assert server_span.status.status_code is StatusCode.UNSET


async def test_server_stream_error_midway(otel: Telemetry, protocol: str) -> None:
    output = await traced_client(otel, protocol).call_server_stream(SPLIT, S(value="ab!c"))
    async with output:
        assert [m.value async for m in output] == ["a", "b"]
    client_span, server_span = await otel.finished()
    expected = "aborted" if protocol == "connect" else 10
    assert outcome(client_span) == outcome(server_span) == expected
    assert client_span.status.status_code is StatusCode.ERROR
    assert server_span.status.status_code is StatusCode.UNSET


def _events(span: ReadableSpan) -> list[tuple[str, int, int]]:
    found = []
    for event in span.events:
        assert event.name == "rpc.message"
        attributes = event.attributes or {}
        kind, number, size = (
            attributes["rpc.message.type"],
            attributes["rpc.message.id"],
            attributes["rpc.message.uncompressed_size"],
        )
        assert isinstance(kind, str)
        assert isinstance(number, int)
        assert isinstance(size, int)
        found.append((kind, number, size))
    return sorted(found)


@pytest.mark.parametrize("message_events", [True, False])
async def test_message_events(otel: Telemetry, protocol: str, message_events: bool) -> None:
    client = traced_client(otel, protocol, message_events=message_events)
    got = [m.value async for m in client.bidi_stream(UPPER, [S(value="a"), S(value="bc")])]
    assert got == ["A", "BC"]
    client_span, server_span = await otel.finished()
    assert_one_trace(client_span, server_span)
    if not message_events:
        assert client_span.events == server_span.events == ()
        return
    sizes = [S(value="a").ByteSize(), S(value="bc").ByteSize()]
    assert _events(client_span) == [
        ("RECEIVED", 1, sizes[0]),
        ("RECEIVED", 2, sizes[1]),
        ("SENT", 1, sizes[0]),
        ("SENT", 2, sizes[1]),
    ]
    assert _events(server_span) == _events(client_span)


async def test_untrusted_server_starts_a_trace_linked_to_the_client(otel: Telemetry) -> None:
    seen: list[trace.Span] = []

    async def echo(request: S, ctx: RequestContext) -> S:
        seen.append(trace.get_current_span())
        return request

    app = ConnectASGIApplication(
        [unary_handler(ECHO, echo)], options=ServerOptions(interceptors=[otel.interceptor()])
    )
    client = make_client([otel.interceptor()], app=app)
    assert await client.unary(ECHO, S(value="x")) == S(value="x")
    client_span, server_span = await otel.finished()
    assert client_span.context is not None
    assert server_span.context is not None
    assert server_span.parent is None
    assert server_span.context.trace_id != client_span.context.trace_id
    (link,) = server_span.links
    assert link.context.span_id == client_span.context.span_id
    assert link.context.trace_id == client_span.context.trace_id
    # The handler ran inside the server span.
    (current,) = seen
    assert current.get_span_context().span_id == server_span.context.span_id


class CurrentSpanAtEnd(Interceptor):
    """Outside the OpenTelemetry interceptor: sees the context after its ``on_end``."""

    def __init__(self) -> None:
        self.during: list[trace.Span] = []
        self.after: list[trace.Span] = []

    def on_response(self, call: Call, message: Any) -> None:
        self.during.append(trace.get_current_span())

    def on_end(self, call: Call, error: ConnectError | None) -> None:
        self.after.append(trace.get_current_span())


@pytest.mark.parametrize("method", ["unary", "stream"])
async def test_server_span_is_current_for_the_handler_only(otel: Telemetry, method: str) -> None:
    outer = CurrentSpanAtEnd()
    client = make_client([otel.interceptor()], [outer, otel.interceptor(trust_remote=True)])
    if method == "unary":
        assert await client.unary(ECHO, S(value="x")) == S(value="x")
    else:
        assert [m.value async for m in client.server_stream(SPLIT, S(value="xy"))] == ["x", "y"]
    _, server_span = await otel.finished()
    assert server_span.context is not None
    assert {s.get_span_context().span_id for s in outer.during} == {server_span.context.span_id}
    (after,) = outer.after
    assert not after.get_span_context().is_valid


class Refuse(Interceptor):
    def on_start(self, call: Call) -> None:
        raise ConnectError(Code.UNAUTHENTICATED, "who are you")


async def test_refused_by_an_inner_interceptor(otel: Telemetry) -> None:
    """An inner interceptor's on_start fails the call: the span still ends, once."""
    client = make_client([otel.interceptor(), Refuse()])
    out = await client.call_unary(ECHO, S(value="x"))
    error = out.error()
    assert error is not None
    assert error.code is Code.UNAUTHENTICATED
    (span,) = otel.spans.get_finished_spans()
    assert span.kind is SpanKind.CLIENT
    assert outcome(span) == "unauthenticated"
    assert span.status.status_code is StatusCode.ERROR


async def test_server_address_from_host_header(otel: Telemetry) -> None:
    client = make_client(server=[otel.interceptor()])
    await client.unary(ECHO, S(value="x"), extra_headers={"host": "[::1]:8443"})
    await client.unary(ECHO, S(value="x"), extra_headers={"host": "example.com"})
    first, second = otel.spans.get_finished_spans()
    assert first.attributes is not None
    assert second.attributes is not None
    assert (first.attributes["server.address"], first.attributes["server.port"]) == ("::1", 8443)
    assert second.attributes["server.address"] == "example.com"
    assert "server.port" not in second.attributes


async def test_works_without_an_sdk() -> None:
    """The API alone (no providers configured): calls go through, nothing is recorded."""
    otel = OpenTelemetryInterceptor(message_events=True)
    client = make_client([otel], [otel])
    assert await client.unary(ECHO, S(value="x")) == S(value="x")
    assert [m.value async for m in client.server_stream(SPLIT, S(value="xy"))] == ["x", "y"]


# --- metrics -------------------------------------------------------------------------------


def _point(
    points: Mapping[str, tuple[str, list[HistogramDataPoint]]], name: str, **attributes: object
) -> tuple[str, HistogramDataPoint]:
    unit, found = points[name]
    matching = [
        p for p in found if all((p.attributes or {}).get(k) == v for k, v in attributes.items())
    ]
    assert len(matching) == 1, (name, attributes, found)
    return unit, matching[0]


async def test_metrics(otel: Telemetry, protocol: str) -> None:
    client = traced_client(otel, protocol, message_sizes=True)
    assert await client.unary(ECHO, S(value="hi")) == S(value="hi")
    assert await client.client_stream(CONCAT, [S(value="ab"), S(value="c")]) == S(value="abc")
    out = await client.call_unary(FAIL, S(value="no"))
    assert out.error() is not None
    split = await client.call_server_stream(SPLIT, S(value="ab!c"))
    async with split:
        assert [m.value async for m in split] == ["a", "b"]
    await otel.ended(8)
    points = otel.points()
    assert set(points) == {
        f"rpc.{side}.{name}"
        for side in ("client", "server")
        for name in (
            "duration",
            "request.size",
            "response.size",
            "requests_per_rpc",
            "responses_per_rpc",
        )
    }
    system = "connect_rpc" if protocol == "connect" else "grpc"
    ok = {} if protocol == "connect" else {"rpc.grpc.status_code": 0}
    for side in ("client", "server"):
        place = {"server.address": "test", "server.port": 8080} if side == "client" else {}
        echo = {"rpc.system": system, "rpc.service": SERVICE, "rpc.method": "Echo", **place}
        concat = {**echo, "rpc.method": "Concat"}
        fail = {**echo, "rpc.method": "Fail"}
        split_ = {**echo, "rpc.method": "Split"}

        unit, point = _point(points, f"rpc.{side}.duration", **echo, **ok)
        assert unit == "ms"
        assert point.count == 1
        assert point.sum > 0
        assert set(point.attributes or {}) == set(echo) | set(ok)
        unit, point = _point(points, f"rpc.{side}.request.size", **echo)
        assert (unit, point.count, point.sum) == ("By", 1, S(value="hi").ByteSize())
        assert set(point.attributes or {}) == set(echo)
        unit, point = _point(points, f"rpc.{side}.response.size", **echo)
        assert (unit, point.count, point.sum) == ("By", 1, S(value="hi").ByteSize())
        # Unary methods have no per-call message counts: they would always be 1.
        for name in ("requests_per_rpc", "responses_per_rpc"):
            assert not [
                p
                for p in points[f"rpc.{side}.{name}"][1]
                if (p.attributes or {}).get("rpc.method") in ("Echo", "Fail")
            ]

        unit, point = _point(points, f"rpc.{side}.request.size", **concat)
        assert (point.count, point.sum) == (2, S(value="ab").ByteSize() + S(value="c").ByteSize())
        unit, point = _point(points, f"rpc.{side}.response.size", **concat)
        assert (point.count, point.sum) == (1, S(value="abc").ByteSize())
        unit, point = _point(points, f"rpc.{side}.requests_per_rpc", **concat, **ok)
        assert (unit, point.count, point.sum) == ("{count}", 1, 2)
        unit, point = _point(points, f"rpc.{side}.responses_per_rpc", **concat, **ok)
        assert (unit, point.count, point.sum) == ("{count}", 1, 1)

        failed = (
            {"rpc.connect_rpc.error_code": "failed_precondition"}
            if protocol == "connect"
            else {"rpc.grpc.status_code": 9}
        )
        unit, point = _point(points, f"rpc.{side}.duration", **fail, **failed)
        assert point.count == 1
        aborted = (
            {"rpc.connect_rpc.error_code": "aborted"}
            if protocol == "connect"
            else {"rpc.grpc.status_code": 10}
        )
        unit, point = _point(points, f"rpc.{side}.responses_per_rpc", **split_, **aborted)
        assert (point.count, point.sum) == (1, 2)
        # No per-caller attribute on the server's metrics.
        if side == "server":
            assert not any("client." in k for k in point.attributes or {})


# --- over a socket -------------------------------------------------------------------------


async def test_over_hypercorn(otel: Telemetry) -> None:
    app = make_app(EchoService(), ServerOptions(interceptors=[otel.interceptor(trust_remote=True)]))
    url, stop, task = await _hypercorn(app)
    try:
        async with AsyncConnectClient(
            url, HTTP1Transport(), options=ClientOptions(interceptors=[otel.interceptor()])
        ) as client:
            assert await client.unary(ECHO, S(value="x")) == S(value="x")
        client_span, server_span = await otel.finished()
    finally:
        stop.set()
        await task
    assert_one_trace(client_span, server_span)
    assert client_span.attributes is not None
    assert server_span.attributes is not None
    port = client_span.attributes["server.port"]
    assert client_span.attributes["server.address"] == "127.0.0.1"
    assert server_span.attributes["server.address"] == "127.0.0.1"
    assert server_span.attributes["server.port"] == port
    assert server_span.attributes["client.address"] == "127.0.0.1"
    assert isinstance(server_span.attributes["client.port"], int)


async def test_message_size_metrics_are_opt_in(otel: Telemetry) -> None:
    client = traced_client(otel)
    assert await client.unary(ECHO, S(value="hi")) == S(value="hi")
    await otel.ended(2)
    assert set(otel.points()) == {"rpc.client.duration", "rpc.server.duration"}
