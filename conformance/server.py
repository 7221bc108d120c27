"""Conformance server: serves ``connectrpc.conformance.v1.ConformanceService`` with connectrpc.

Run by the official runner (``connectconformance --mode server``). It reads one size-prefixed
``ServerCompatRequest`` from stdin, starts hypercorn on 127.0.0.1 (an ephemeral port) with our
ASGI application, writes one size-prefixed ``ServerCompatResponse`` to stdout and serves until
SIGTERM. The behaviour of every method is specified in the harness's ``service.proto``.

``CONFORMANCE_SERVER`` chooses the server: ``hypercorn`` (the default; the only one run
with ``connectrpc.hypercorn.patch_hypercorn_h2()``), or ``pyvoy``, ``granian``, ``uvicorn``,
each unpatched and started by ``conformance/launchers.py``, or ``gunicorn``, which runs the
WSGI application over the sync implementation in ``conformance/server_sync.py``. Each has its feature config,
``conformance/server-config-<server>.yaml``; ``tools/conformance.sh server --server NAME``.

The harness's Python code is generated into ``conformance/gen`` by
``tools/gen_conformance_protos.sh`` (package ``connectrpc_conformance.v1``; proto package
``connectrpc.conformance.v1``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import struct
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, cast

# Fallback for runs from a checkout; under Bazel the generated code comes from runfiles first.
sys.path.append(str(Path(__file__).resolve().parent / "gen"))

from connectrpc_conformance.v1 import (
    config_pb2,
    server_compat_pb2,
    service_connect,
    service_pb2,
)
from google.protobuf.message import Message
from multidict import CIMultiDict

from connectrpc.errors import Code, ConnectError, ErrorDetail
from connectrpc.server import (
    ConnectASGIApplication,
    Handler,
    RequestContext,
    ServerOptions,
    bidi_stream_handler,
    client_stream_handler,
    server_stream_handler,
    unary_handler,
)

RequestInfo = service_pb2.ConformancePayload.RequestInfo

# The ConformanceService's methods, as our generator describes them. Unimplemented is
# deliberately left unbound: the server must answer it with the framework's "unimplemented".
_METHODS = service_connect.ConformanceServiceMethods
UNARY = _METHODS.UNARY
SERVER_STREAM = _METHODS.SERVER_STREAM
CLIENT_STREAM = _METHODS.CLIENT_STREAM
BIDI_STREAM = _METHODS.BIDI_STREAM
IDEMPOTENT_UNARY = _METHODS.IDEMPOTENT_UNARY


# --- helpers -------------------------------------------------------------------------------


def _request_info(
    ctx: RequestContext, requests: Iterable[Message], *, full: bool = True
) -> RequestInfo:
    """What the server observed: headers, timeout, GET-ness (if ``full``) and the requests."""
    info = RequestInfo()
    if full:
        by_name: dict[str, service_pb2.Header] = {}
        for name, value in ctx.request_headers.items():
            key = name.lower()
            header = by_name.get(key)
            if header is None:
                header = by_name[key] = info.request_headers.add(name=key)
            header.value.append(value)
        remaining = ctx.timeout_remaining()
        if remaining is not None:
            info.timeout_ms = int(remaining * 1000)
        if ctx.http_method == "GET":
            get_info = info.connect_get_info
            get_info.SetInParent()
            params: dict[str, service_pb2.Header] = {}
            for name, value in ctx.query.items():
                param = params.get(name)
                if param is None:
                    param = params[name] = get_info.query_params.add(name=name)
                param.value.append(value)
    for request in requests:
        info.requests.add().Pack(request)
    return info


def _add_headers(target: CIMultiDict[str], headers: Iterable[service_pb2.Header]) -> None:
    for header in headers:
        for value in header.value:
            target.add(header.name, value)


def _set_metadata(
    ctx: RequestContext,
    definition: service_pb2.UnaryResponseDefinition | service_pb2.StreamResponseDefinition,
) -> None:
    _add_headers(ctx.response_headers, definition.response_headers)
    _add_headers(ctx.response_trailers, definition.response_trailers)


def _error(spec: service_pb2.Error, info: RequestInfo | None) -> ConnectError:
    """The ConnectError a response definition asks for, with ``info`` appended to its details."""
    code = Code[config_pb2.Code.Name(spec.code).removeprefix("CODE_")]
    details: list[ErrorDetail | Message] = [ErrorDetail.from_any(d) for d in spec.details]
    if info is not None:
        details.append(info)
    return ConnectError(code, spec.message, details=details)


async def _delay(ms: int) -> None:
    if ms > 0:
        await asyncio.sleep(ms / 1000)


async def _unary_payload(
    definition: service_pb2.UnaryResponseDefinition | None,
    info: RequestInfo,
    ctx: RequestContext,
) -> service_pb2.ConformancePayload:
    """Shared by Unary, IdempotentUnary and ClientStream."""
    if definition is None:
        return service_pb2.ConformancePayload(request_info=info)
    _set_metadata(ctx, definition)
    await _delay(definition.response_delay_ms)
    if definition.WhichOneof("response") == "error":
        raise _error(definition.error, info)
    return service_pb2.ConformancePayload(data=definition.response_data, request_info=info)


# --- the service ---------------------------------------------------------------------------


async def unary(
    request: service_pb2.UnaryRequest, ctx: RequestContext
) -> service_pb2.UnaryResponse:
    definition = request.response_definition if request.HasField("response_definition") else None
    info = _request_info(ctx, [request])
    return service_pb2.UnaryResponse(payload=await _unary_payload(definition, info, ctx))


async def idempotent_unary(
    request: service_pb2.IdempotentUnaryRequest, ctx: RequestContext
) -> service_pb2.IdempotentUnaryResponse:
    definition = request.response_definition if request.HasField("response_definition") else None
    info = _request_info(ctx, [request])
    return service_pb2.IdempotentUnaryResponse(payload=await _unary_payload(definition, info, ctx))


async def client_stream(
    requests: AsyncIterator[service_pb2.ClientStreamRequest], ctx: RequestContext
) -> service_pb2.ClientStreamResponse:
    received: list[service_pb2.ClientStreamRequest] = []
    definition: service_pb2.UnaryResponseDefinition | None = None
    async for request in requests:
        if not received and request.HasField("response_definition"):
            definition = request.response_definition
        received.append(request)
    info = _request_info(ctx, received)
    return service_pb2.ClientStreamResponse(payload=await _unary_payload(definition, info, ctx))


async def server_stream(
    request: service_pb2.ServerStreamRequest, ctx: RequestContext
) -> AsyncIterator[service_pb2.ServerStreamResponse]:
    if not request.HasField("response_definition"):
        return
    definition = request.response_definition
    _set_metadata(ctx, definition)
    sent = 0
    for data in definition.response_data:
        payload = service_pb2.ConformancePayload(data=data)
        if sent == 0:
            payload.request_info.CopyFrom(_request_info(ctx, [request]))
        await _delay(definition.response_delay_ms)
        yield service_pb2.ServerStreamResponse(payload=payload)
        sent += 1
    if definition.HasField("error"):
        raise _error(definition.error, _request_info(ctx, [request]) if sent == 0 else None)


async def bidi_stream(
    requests: AsyncIterator[service_pb2.BidiStreamRequest], ctx: RequestContext
) -> AsyncIterator[service_pb2.BidiStreamResponse]:
    definition = service_pb2.StreamResponseDefinition()
    full_duplex = False
    first = True
    sent = 0
    pending: list[service_pb2.BidiStreamRequest] = []  # received since the last response
    async for request in requests:
        pending.append(request)
        if first:
            first = False
            definition = request.response_definition
            full_duplex = request.full_duplex
            _set_metadata(ctx, definition)
        if not full_duplex:
            continue
        if sent >= len(definition.response_data):
            # Nothing left to answer with: stop reading and end with the error, if any.
            break
        # Full duplex: one response per request, as it arrives. The first carries the whole
        # request info, later ones only the requests received since the previous response.
        info = _request_info(ctx, pending, full=sent == 0)
        payload = service_pb2.ConformancePayload(
            data=definition.response_data[sent], request_info=info
        )
        await _delay(definition.response_delay_ms)
        yield service_pb2.BidiStreamResponse(payload=payload)
        sent += 1
        pending = []
    # Half duplex (all requests read), or full duplex with more responses than requests.
    while sent < len(definition.response_data):
        payload = service_pb2.ConformancePayload(data=definition.response_data[sent])
        if sent == 0:
            payload.request_info.CopyFrom(_request_info(ctx, pending))
        await _delay(definition.response_delay_ms)
        yield service_pb2.BidiStreamResponse(payload=payload)
        sent += 1
    if definition.HasField("error"):
        raise _error(definition.error, _request_info(ctx, pending) if sent == 0 else None)


def handlers() -> list[Handler]:
    return [
        unary_handler(UNARY, unary),
        unary_handler(IDEMPOTENT_UNARY, idempotent_unary),
        client_stream_handler(CLIENT_STREAM, client_stream),
        server_stream_handler(SERVER_STREAM, server_stream),
        bidi_stream_handler(BIDI_STREAM, bidi_stream),
    ]


# --- process plumbing ----------------------------------------------------------------------


def _read_request() -> server_compat_pb2.ServerCompatRequest:
    stdin = sys.stdin.buffer
    prefix = stdin.read(4)
    if len(prefix) != 4:
        raise SystemExit("conformance server: no ServerCompatRequest on stdin")
    (size,) = struct.unpack(">I", prefix)
    data = stdin.read(size)
    if len(data) != size:
        raise SystemExit("conformance server: truncated ServerCompatRequest on stdin")
    request = server_compat_pb2.ServerCompatRequest()
    request.ParseFromString(data)
    return request


def _write_response(response: server_compat_pb2.ServerCompatResponse) -> None:
    data = response.SerializeToString()
    sys.stdout.buffer.write(struct.pack(">I", len(data)) + data)
    sys.stdout.buffer.flush()


async def _serve(request: server_compat_pb2.ServerCompatRequest, workdir: Path) -> None:
    # Imported here: conformance/app.py imports this module's handlers into other servers'
    # processes, which must not load hypercorn (let alone its patch).
    from hypercorn.asyncio import serve
    from hypercorn.config import Config
    from hypercorn.typing import ASGIFramework

    limit = request.message_receive_limit or None
    app = ConnectASGIApplication(handlers(), options=ServerOptions(read_max_bytes=limit))

    config = Config()
    config.accesslog = None
    config.errorlog = "-"  # stderr; stdout carries the ServerCompatResponse
    # HTTP/1.1 and HTTP/2 are always on: h2c with prior knowledge on plain TCP (hypercorn
    # switches on the HTTP/2 preface), ALPN "h2"/"http/1.1" under TLS.
    config.alpn_protocols = ["h2", "http/1.1"]
    # hypercorn closes an HTTP/2 connection with GOAWAY after 1,000 requests by default; Go's
    # client (the runner) then fails the calls in flight on it with "unavailable" instead of
    # retrying them. The suite sends more than 1,000 calls per connection, so lift the cap
    # (a setting, as a deployment would choose it; docs/DEPLOYMENT.md).
    config.keep_alive_max_requests = 1_000_000
    response = server_compat_pb2.ServerCompatResponse(host="127.0.0.1")
    if request.use_tls:
        cert = workdir / "server.crt"
        key = workdir / "server.key"
        cert.write_bytes(request.server_creds.cert)
        key.write_bytes(request.server_creds.key)
        config.certfile = str(cert)
        config.keyfile = str(key)
        response.pem_cert = request.server_creds.cert
        if request.client_tls_cert:
            client_ca = workdir / "client-ca.crt"
            client_ca.write_bytes(request.client_tls_cert)
            config.ca_certs = str(client_ca)
            config.verify_mode = ssl.CERT_REQUIRED

    # Bind the socket ourselves to learn the ephemeral port before telling the runner;
    # hypercorn adopts it through an fd:// bind.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(config.backlog)
    response.port = sock.getsockname()[1]
    config.bind = [f"fd://{sock.detach()}"]

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    _write_response(response)
    # ConnectASGIApplication types ASGI messages as plain mappings; hypercorn as TypedDicts.
    server = asyncio.ensure_future(
        serve(cast(ASGIFramework, app), config, shutdown_trigger=stop.wait)
    )
    await asyncio.wait([server, asyncio.ensure_future(stop.wait())], return_when="FIRST_COMPLETED")
    # hypercorn waits for open connections to close (up to graceful_timeout, and on some
    # Python versions without bound in Server.wait_closed); the runner wants us gone.
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(server, config.graceful_timeout + 1)


def main() -> None:
    server_name = os.environ.get("CONFORMANCE_SERVER") or "hypercorn"
    if server_name == "hypercorn":
        from connectrpc.hypercorn import patch_hypercorn_h2

        patch_hypercorn_h2()
        serve: Callable[[server_compat_pb2.ServerCompatRequest, Path], Coroutine[Any, Any, None]]
        serve = _serve
    else:
        import launchers  # conformance/launchers.py: the unpatched servers

        serve = launchers.server(server_name)
    request = _read_request()
    with tempfile.TemporaryDirectory(prefix="connect-conformance-server-") as workdir:
        asyncio.run(serve(request, Path(workdir)))


if __name__ == "__main__":
    main()
