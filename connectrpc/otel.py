"""OpenTelemetry tracing, metrics and trace-context propagation for clients and servers.

``OpenTelemetryInterceptor`` is an interceptor (``connectrpc.interceptors``): pass one in
``ClientOptions(interceptors=[...])``, ``ServerOptions(interceptors=[...])``, or both::

    from connectrpc.otel import OpenTelemetryInterceptor

    client = AsyncConnectClient(
        url, options=ClientOptions(interceptors=[OpenTelemetryInterceptor()])
    )
    app = ConnectASGIApplication(
        handlers,
        options=ServerOptions(interceptors=[OpenTelemetryInterceptor(trust_remote=True)]),
    )

It needs only ``opentelemetry-api`` (the ``connect-python[otel]`` extra); install and configure
an SDK to export anything.

What it records follows the OpenTelemetry semantic conventions for RPC, version 1.37.0: the
last release of the experimental RPC conventions, the ones existing instrumentations keep
emitting by default while the stable ones settle
(https://github.com/open-telemetry/semantic-conventions/tree/v1.37.0/docs/rpc):

- One span per call, named ``package.Service/Method``, of kind ``CLIENT`` or ``SERVER``,
  with ``rpc.system`` (``connect_rpc`` for the Connect protocol; ``grpc`` for gRPC and for
  gRPC-Web, which is gRPC's own protocol for HTTP/1.1), ``rpc.service``, ``rpc.method``,
  ``server.address`` and ``server.port`` (a client's base URL; a server's ``Host``
  header, when sent) and, on servers, ``client.address`` and ``client.port``.
- The outcome: ``rpc.connect_rpc.error_code`` (the code's wire name, set only on error;
  ``canceled`` is spelled ``cancelled``, as the conventions list it) for Connect, ``rpc.grpc.status_code`` (the number, ``0`` on success) for gRPC and gRPC-Web.
  A client span's status is ``ERROR`` for every error. A server span's status is ``ERROR``
  only for the codes that mean the server failed (``unknown``, ``deadline_exceeded``,
  ``unimplemented``, ``internal``, ``unavailable``, ``data_loss``), as the gRPC conventions
  say and the later Connect conventions agree: a server that rejects a bad request is
  working. A call the client abandons (a stream closed before its end, a deadline) ends
  with ``canceled`` or ``deadline_exceeded``.
- With ``message_events=True``, an ``rpc.message`` event per message, with
  ``rpc.message.type`` (``SENT``/``RECEIVED``), ``rpc.message.id`` (counted from 1 in each
  direction) and ``rpc.message.uncompressed_size`` (the protobuf size in bytes).
- Metrics (histograms): ``rpc.{client,server}.duration`` in milliseconds (the unit of
  these conventions; later ones use seconds), with ``message_sizes=True``
  ``rpc.{client,server}.request.size`` and ``.response.size`` in bytes per message, and, for
  streaming methods,
  ``rpc.{client,server}.requests_per_rpc`` and ``.responses_per_rpc`` in messages (the
  conventions require them for streams; for unary methods they are always 1, and the
  duration's count already counts the calls, so they are not recorded). They carry
  ``rpc.system``, ``rpc.service``, ``rpc.method``, a client's ``server.address`` and
  ``server.port`` and, on the duration and per-call counts, the outcome attribute above.
  Sizes are recorded as each message passes, before the outcome is known, so they have
  none. Per-caller addresses are left off metrics: their cardinality is unbounded.

Trace context: a client injects the current context, with its span, into the request
headers through the propagator (the global one, ``opentelemetry.propagate``, by default:
W3C ``traceparent`` and baggage unless configured otherwise). A server makes its span
current while the handler runs, so spans the handler starts are its children; with
``trust_remote=True`` the span continues the trace the client sent, otherwise it starts
its own and links to the client's. A client's span is not made current: its hooks may
run in other tasks than the caller's.
"""

from __future__ import annotations

import time
from contextvars import Token
from typing import Any, Final

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, propagate, trace
    from opentelemetry.context import Context
    from opentelemetry.metrics import Histogram, MeterProvider
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, TracerProvider
    from opentelemetry.util.types import AttributeValue
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "connectrpc.otel needs the OpenTelemetry API: pip install 'connect-python[otel]'"
    ) from exc

from google.protobuf.message import Message

from connectrpc._core.code import Code
from connectrpc._core.error import ConnectError
from connectrpc._core.interceptor import Call, Interceptor, Peer
from connectrpc._version import __version__
from connectrpc.method import MethodInfo, StreamType

__all__ = ["OpenTelemetryInterceptor"]

SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.37.0"
_SCOPE: Final = "connectrpc.otel"

# Codes for which a server span's status is ERROR (the gRPC conventions' table): the rest
# are the client's doing, and the server handled them as it should.
_SERVER_FAULTS: Final = frozenset(
    {
        Code.UNKNOWN,
        Code.DEADLINE_EXCEEDED,
        Code.UNIMPLEMENTED,
        Code.INTERNAL,
        Code.UNAVAILABLE,
        Code.DATA_LOSS,
    }
)

# rpc.connect_rpc.error_code's well-known values are the Connect wire names, except that the
# conventions spell "canceled" the British way, and a listed value MUST be used.
_CONNECT_CODE_NAMES: Final = {
    code: ("cancelled" if code is Code.CANCELED else code.value) for code in Code
}

Attributes = dict[str, AttributeValue]


class _Method:
    """What a call's method, protocol and side (and a client's peer) decide, computed once:
    the span name and the attributes of spans and measurements."""

    __slots__ = (
        "end_attributes",
        "grpc",
        "method",
        "metric_attributes",
        "name",
        "peer",
        "span_attributes",
        "streaming",
    )

    def __init__(self, method: MethodInfo[Any, Any], protocol: str, peer: Peer | None) -> None:
        self.method = method
        self.peer = peer
        self.grpc = protocol != "connect"
        self.streaming = method.stream_type is not StreamType.UNARY
        self.name = f"{method.service}/{method.name}"
        base: Attributes = {
            "rpc.system": "grpc" if self.grpc else "connect_rpc",
            "rpc.service": method.service,
            "rpc.method": method.name,
        }
        if peer is not None:
            base["server.address"] = peer.host
            if peer.port is not None:
                base["server.port"] = peer.port
        self.span_attributes = base
        self.metric_attributes = base
        # Attributes of the measurements taken at the end, by outcome (None: success).
        self.end_attributes: dict[Code | None, Attributes] = {}
        for code in (None, *Code):
            attrs = dict(base)
            if self.grpc:
                attrs["rpc.grpc.status_code"] = 0 if code is None else code.grpc_value
            elif code is not None:
                attrs["rpc.connect_rpc.error_code"] = _CONNECT_CODE_NAMES[code]
            self.end_attributes[code] = attrs


class _Active:
    """One call in flight, kept in ``call.state``."""

    __slots__ = ("method", "requests", "responses", "span", "start", "token")

    def __init__(self, method: _Method, span: Span, token: Token[Context] | None) -> None:
        self.method = method
        self.span = span
        self.token = token
        self.start = time.perf_counter()
        self.requests = 0
        self.responses = 0


class _Instruments:
    """The histograms of one side (client or server)."""

    __slots__ = ("duration", "request_size", "requests", "response_size", "responses")

    def __init__(self, meter: metrics.Meter, side: str) -> None:
        prefix = f"rpc.{side}"
        self.duration: Histogram = meter.create_histogram(
            f"{prefix}.duration", unit="ms", description=f"Duration of {side} RPCs."
        )
        self.request_size: Histogram = meter.create_histogram(
            f"{prefix}.request.size",
            unit="By",
            description="Size of each request message (protobuf encoding, uncompressed).",
        )
        self.response_size: Histogram = meter.create_histogram(
            f"{prefix}.response.size",
            unit="By",
            description="Size of each response message (protobuf encoding, uncompressed).",
        )
        self.requests: Histogram = meter.create_histogram(
            f"{prefix}.requests_per_rpc",
            unit="{count}",
            description="Request messages per RPC.",
        )
        self.responses: Histogram = meter.create_histogram(
            f"{prefix}.responses_per_rpc",
            unit="{count}",
            description="Response messages per RPC.",
        )


class OpenTelemetryInterceptor(Interceptor):
    """Spans, metrics and trace-context propagation for every call (see the module docs).

    One class serves both sides: each call says which side it is on (``Call.is_client``),
    the options are the same for both, and one instance may be given to a process's
    clients and its server alike.

    Args:
        tracer_provider: where spans go; the global provider by default.
        meter_provider: where measurements go; the global provider by default.
        propagator: how trace context crosses the wire; the global propagator (looked up
            at each call, so one set later applies) by default.
        message_events: add an ``rpc.message`` event to the span for each message sent
            and received. Off by default: a long stream would make a large span.
        message_sizes: also record the ``rpc.*.request.size`` / ``.response.size``
            histograms, one measurement per message. Off by default: each costs about
            7-10 µs in the Python SDK (about 30 µs per unary round trip, both sides), and
            the conventions after v1.37 no longer define them.
        trust_remote: (servers) make the span a child of the trace context the client
            sent. Off by default, which suits a server that strangers can reach: its span
            starts a new trace (or continues a span already current in the server, such as
            an HTTP middleware's) and links to the client's span instead, so callers cannot
            make it join their traces or choose its sampling; the client's baggage is not
            taken either. Turn it on between your own services, to see one trace from
            client to server.
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        propagator: TextMapPropagator | None = None,
        message_events: bool = False,
        message_sizes: bool = False,
        trust_remote: bool = False,
    ) -> None:
        self._tracer = trace.get_tracer(
            _SCOPE, __version__, tracer_provider=tracer_provider, schema_url=SCHEMA_URL
        )
        meter = metrics.get_meter(
            _SCOPE, __version__, meter_provider=meter_provider, schema_url=SCHEMA_URL
        )
        self._client = _Instruments(meter, "client")
        self._server = _Instruments(meter, "server")
        self._propagator = propagator
        self._message_events = message_events
        self._message_sizes = message_sizes
        self._trust_remote = trust_remote
        # Keyed by the ids of the method and the client's peer (both long-lived objects;
        # each entry keeps them, and is checked against them, so a reused id cannot match).
        self._methods: dict[tuple[int, str, int], _Method] = {}

    def _method(self, call: Call) -> _Method:
        method = call.method
        peer = call.peer if call.is_client else None
        key = (id(method), call.protocol, id(peer))
        entry = self._methods.get(key)
        if entry is None or entry.method is not method or entry.peer is not peer:
            entry = self._methods[key] = _Method(method, call.protocol, peer)
        return entry

    def on_start(self, call: Call) -> None:
        entry = self._method(call)
        propagator = self._propagator or propagate.get_global_textmap()
        if call.is_client:
            span = self._tracer.start_span(
                entry.name, kind=SpanKind.CLIENT, attributes=entry.span_attributes
            )
            propagator.inject(call.request_headers, context=trace.set_span_in_context(span))
            call.state[self] = _Active(entry, span, None)
            return
        current = otel_context.get_current()
        links: list[Link] | None = None
        if self._trust_remote:
            parent = propagator.extract(call.request_headers, context=current)
        else:
            parent = current
            remote = trace.get_current_span(
                propagator.extract(call.request_headers, context=Context())
            ).get_span_context()
            if remote.is_valid:
                links = [Link(remote)]
        span = self._tracer.start_span(
            entry.name,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=_server_attributes(entry, call),
            links=links,
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        call.state[self] = _Active(entry, span, token)

    def on_request(self, call: Call, message: Message) -> None:
        active: _Active | None = call.state.get(self)
        if active is None:
            return
        active.requests += 1
        if not (self._message_sizes or self._message_events):
            return
        size = message.ByteSize()
        if self._message_sizes:
            side = self._client if call.is_client else self._server
            side.request_size.record(size, active.method.metric_attributes)
        if self._message_events:
            kind = "SENT" if call.is_client else "RECEIVED"
            _message_event(active.span, kind, active.requests, size)

    def on_response(self, call: Call, message: Message) -> None:
        active: _Active | None = call.state.get(self)
        if active is None:
            return
        active.responses += 1
        if not (self._message_sizes or self._message_events):
            return
        size = message.ByteSize()
        if self._message_sizes:
            side = self._client if call.is_client else self._server
            side.response_size.record(size, active.method.metric_attributes)
        if self._message_events:
            kind = "RECEIVED" if call.is_client else "SENT"
            _message_event(active.span, kind, active.responses, size)

    def on_end(self, call: Call, error: ConnectError | None) -> None:
        active: _Active | None = call.state.pop(self, None)
        if active is None:
            return
        elapsed_ms = (time.perf_counter() - active.start) * 1000.0
        entry = active.method
        span = active.span
        code = None if error is None else error.code
        if span.is_recording():
            if entry.grpc:
                span.set_attribute("rpc.grpc.status_code", 0 if code is None else code.grpc_value)
            elif code is not None:
                span.set_attribute("rpc.connect_rpc.error_code", _CONNECT_CODE_NAMES[code])
            if error is not None and (call.is_client or error.code in _SERVER_FAULTS):
                span.set_status(Status(StatusCode.ERROR, error.message or None))
            if call.exception is not None:
                # A handler's own exception: its type and traceback stay on the server's
                # span, though the client only hears "internal".
                span.record_exception(call.exception)
        span.end()
        if active.token is not None:
            otel_context.detach(active.token)
        instruments = self._client if call.is_client else self._server
        attributes = entry.end_attributes[code]
        instruments.duration.record(elapsed_ms, attributes)
        if entry.streaming:
            instruments.requests.record(active.requests, attributes)
            instruments.responses.record(active.responses, attributes)


def _server_attributes(entry: _Method, call: Call) -> Attributes:
    """A server span's attributes: the method's, the ``Host`` the client addressed, and
    the client's address."""
    attributes = dict(entry.span_attributes)
    host = call.request_headers.get("host")
    if host:
        address, port = _split_host(host)
        attributes["server.address"] = address
        if port is not None:
            attributes["server.port"] = port
    peer = call.peer
    if peer is not None:
        attributes["client.address"] = peer.host
        if peer.port is not None:
            attributes["client.port"] = peer.port
    return attributes


def _split_host(host: str) -> tuple[str, int | None]:
    """``example.com:8080`` → (``example.com``, 8080); IPv6 literals keep no brackets."""
    if host.startswith("["):
        address, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        address, _, port = host.rpartition(":")
        if not address:
            address, port = host, ""
    return address, int(port) if port.isdigit() else None


def _message_event(span: Span, kind: str, message_id: int, size: int) -> None:
    if span.is_recording():
        span.add_event(
            "rpc.message",
            {
                "rpc.message.type": kind,
                "rpc.message.id": message_id,
                "rpc.message.uncompressed_size": size,
            },
        )
