"""Interceptors on both sides of the Eliza service: a bearer token on the client, the
matching check on the server, request logging and OpenTelemetry tracing.

Run it (after ``uv run python tools/gen_examples.py``)::

    uv run python examples/interceptors.py

It serves Eliza in memory (``ASGITransport``: no sockets), calls Say with and without the
token, and prints the log lines and the spans of one trace.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent / "gen"))

from eliza.v1 import eliza_pb2
from eliza.v1.eliza_connect import AsyncElizaServiceClient, ElizaServiceASGIApplication
from eliza_server import ElizaService
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from connectrpc.client import ClientOptions
from connectrpc.errors import Code, ConnectError
from connectrpc.interceptors import Call, Interceptor
from connectrpc.otel import OpenTelemetryInterceptor
from connectrpc.server import ServerOptions
from connectrpc.testing import ASGITransport

__all__ = ["BearerToken", "LogRequests", "RequireToken", "main"]

logger = logging.getLogger("eliza.requests")


class BearerToken(Interceptor):
    """Client side: sends ``authorization: Bearer <token>`` with every call."""

    def __init__(self, token: str) -> None:
        self.token = token

    def on_start(self, call: Call) -> None:
        call.request_headers["authorization"] = f"Bearer {self.token}"


class RequireToken(Interceptor):
    """Server side: refuses calls without the right token, before the handler runs."""

    def __init__(self, token: str) -> None:
        self.expected = f"Bearer {token}"

    def on_start(self, call: Call) -> None:
        if call.request_headers.get("authorization") != self.expected:
            raise ConnectError(Code.UNAUTHENTICATED, "a valid bearer token is required")


class LogRequests(Interceptor):
    """Either side: one log line per call, with its outcome and duration."""

    def on_start(self, call: Call) -> None:
        call.state[self] = time.perf_counter()

    def on_end(self, call: Call, error: ConnectError | None) -> None:
        ms = (time.perf_counter() - call.state[self]) * 1000
        outcome = error.code.value if error else "ok"
        side = "client" if call.is_client else "server"
        logger.info(
            "%s %s %s: %s in %.1f ms", side, call.protocol, call.method.procedure, outcome, ms
        )


async def main() -> list[str]:
    """Run the example; returns the names of the spans recorded."""
    spans = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    app = ElizaServiceASGIApplication(
        ElizaService(seed=1966),
        options=ServerOptions(
            # The first is the outermost: tracing sees the refusals and the log lines too.
            interceptors=[
                OpenTelemetryInterceptor(tracer_provider=tracing, trust_remote=True),
                LogRequests(),
                RequireToken("s3cret"),
            ]
        ),
    )
    transport = ASGITransport(app)
    with_token = AsyncElizaServiceClient(
        "http://eliza",
        transport,
        options=ClientOptions(
            interceptors=[OpenTelemetryInterceptor(tracer_provider=tracing), BearerToken("s3cret")]
        ),
    )
    reply = await with_token.say(eliza_pb2.SayRequest(sentence="I feel watched"))
    print(f"with the token: {reply.sentence}")
    without = AsyncElizaServiceClient("http://eliza", transport)
    try:
        await without.say(eliza_pb2.SayRequest(sentence="let me in"))
    except ConnectError as err:
        print(f"without it: {err.code.value}: {err.message}")
    names = [f"{span.kind.name.lower()} {span.name}" for span in spans.get_finished_spans()]
    for name in names:
        print(f"span: {name}")
    return names


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    asyncio.run(main())
