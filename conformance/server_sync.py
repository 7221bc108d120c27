"""The ConformanceService as plain (sync) methods, served by ``ConnectWSGIApplication``.

The same behaviour as the async implementation in ``conformance/server.py`` (the harness's
``service.proto`` specifies it), written the way a WSGI application would write it: a
subclass of the generated ``ConformanceServiceSync`` served by the generated
``ConformanceServiceWSGIApplication``, which binds each method with its ``sync_*_handler``.
Unimplemented is left out, as ``server.py`` leaves it unbound: the framework must answer it
with ``unimplemented`` before reading the request. The pure helpers (request
info, metadata, errors) are shared with ``server.py``. Under WSGI every call is
HTTP/1.1, so bidi calls are half duplex: all requests arrive before the first response.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from connectrpc_conformance.v1 import service_connect, service_pb2
from server import _error, _request_info, _set_metadata  # conformance/server.py

from connectrpc.server import ConnectWSGIApplication, RequestContext, ServerOptions


def _delay(ms: int) -> None:
    if ms > 0:
        time.sleep(ms / 1000)


def _payload(
    definition: service_pb2.UnaryResponseDefinition | None,
    info: service_pb2.ConformancePayload.RequestInfo,
    ctx: RequestContext,
) -> service_pb2.ConformancePayload:
    """Shared by Unary, IdempotentUnary and ClientStream."""
    if definition is None:
        return service_pb2.ConformancePayload(request_info=info)
    _set_metadata(ctx, definition)
    _delay(definition.response_delay_ms)
    if definition.WhichOneof("response") == "error":
        raise _error(definition.error, info)
    return service_pb2.ConformancePayload(data=definition.response_data, request_info=info)


def _stream_payloads(
    definition: service_pb2.StreamResponseDefinition,
    info: service_pb2.ConformancePayload.RequestInfo,
) -> Iterator[service_pb2.ConformancePayload]:
    """The payloads of a server or half-duplex bidi stream, then its error, if any: the
    first payload carries ``info`` (as does an error that ends a stream with none)."""
    for sent, data in enumerate(definition.response_data):
        payload = service_pb2.ConformancePayload(data=data)
        if sent == 0:
            payload.request_info.CopyFrom(info)
        _delay(definition.response_delay_ms)
        yield payload
    if definition.HasField("error"):
        raise _error(definition.error, None if definition.response_data else info)


class ConformanceService(service_connect.ConformanceServiceSync):
    """What each method answers is in the request's response definition."""

    def unary(
        self, request: service_pb2.UnaryRequest, ctx: RequestContext
    ) -> service_pb2.UnaryResponse:
        definition = (
            request.response_definition if request.HasField("response_definition") else None
        )
        return service_pb2.UnaryResponse(
            payload=_payload(definition, _request_info(ctx, [request]), ctx)
        )

    def idempotent_unary(
        self, request: service_pb2.IdempotentUnaryRequest, ctx: RequestContext
    ) -> service_pb2.IdempotentUnaryResponse:
        definition = (
            request.response_definition if request.HasField("response_definition") else None
        )
        return service_pb2.IdempotentUnaryResponse(
            payload=_payload(definition, _request_info(ctx, [request]), ctx)
        )

    def client_stream(
        self, requests: Iterator[service_pb2.ClientStreamRequest], ctx: RequestContext
    ) -> service_pb2.ClientStreamResponse:
        received = list(requests)
        definition = None
        if received and received[0].HasField("response_definition"):
            definition = received[0].response_definition
        return service_pb2.ClientStreamResponse(
            payload=_payload(definition, _request_info(ctx, received), ctx)
        )

    def server_stream(
        self, request: service_pb2.ServerStreamRequest, ctx: RequestContext
    ) -> Iterator[service_pb2.ServerStreamResponse]:
        if not request.HasField("response_definition"):
            return
        definition = request.response_definition
        _set_metadata(ctx, definition)
        for payload in _stream_payloads(definition, _request_info(ctx, [request])):
            yield service_pb2.ServerStreamResponse(payload=payload)

    def bidi_stream(
        self, requests: Iterator[service_pb2.BidiStreamRequest], ctx: RequestContext
    ) -> Iterator[service_pb2.BidiStreamResponse]:
        received = list(requests)
        definition = service_pb2.StreamResponseDefinition()
        if received:
            definition = received[0].response_definition
            _set_metadata(ctx, definition)
        for payload in _stream_payloads(definition, _request_info(ctx, received)):
            yield service_pb2.BidiStreamResponse(payload=payload)


def create_app(options: ServerOptions) -> ConnectWSGIApplication:
    generated = service_connect.ConformanceServiceWSGIApplication(ConformanceService())
    unimplemented = service_connect.ConformanceServiceMethods.UNIMPLEMENTED
    handlers = [h for h in generated.handlers if h.method is not unimplemented]
    return ConnectWSGIApplication(handlers, options=options)
