"""The cost of interceptors: unary calls through our client and server with none, with a
chain of three do-nothing interceptors on each side, and with OpenTelemetry on both sides.

Client and server run in one process over the in-memory transport (``ASGITransport``), so
the RPC itself is as cheap as it gets and the interceptors' share of the time is as large
as it can be: over sockets the same overhead is a smaller fraction. Configurations are
interleaved within each round and the ratios are computed within a round; the report gives
medians and min-max.

    uv run python benchmarks/interceptors.py [--rounds 7] [--calls 3000]

Targets (issue "Interceptors, OpenTelemetry ..."): three empty interceptors cost at most 5%
of unary throughput, OpenTelemetry at most 25%.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.protobuf import wrappers_pb2
from google.protobuf.message import Message

from connectrpc.client import AsyncConnectClient, ClientOptions, HTTP1Transport
from connectrpc.errors import ConnectError
from connectrpc.interceptors import Call, Interceptor
from connectrpc.method import MethodInfo, StreamType
from connectrpc.server import ConnectASGIApplication, RequestContext, ServerOptions, unary_handler
from connectrpc.testing import ASGITransport

S = wrappers_pb2.StringValue
ECHO: MethodInfo[S, S] = MethodInfo("bench.v1.Bench", "Echo", S, S, StreamType.UNARY)
RESULTS = Path(__file__).resolve().parent / "results"


class Empty(Interceptor):
    """Overrides every hook with nothing, so each one is really called."""

    def on_start(self, call: Call) -> None:
        pass

    def on_request(self, call: Call, message: Message) -> None:
        pass

    def on_response(self, call: Call, message: Message) -> None:
        pass

    def on_end(self, call: Call, error: ConnectError | None) -> None:
        pass


def _otel(sampled: float = 1.0, **options: Any) -> tuple[list[Interceptor], list[Interceptor]]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    from connectrpc.otel import OpenTelemetryInterceptor

    class Dropped(SpanExporter):
        """Takes batches and drops them: what production costs, minus the network."""

        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    # As in production: spans batched to an exporter in the background; every trace
    # sampled unless ``sampled`` says otherwise (the server follows the client's decision).
    tracer_provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(sampled)))
    tracer_provider.add_span_processor(BatchSpanProcessor(Dropped()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    make = lambda: OpenTelemetryInterceptor(  # noqa: E731
        tracer_provider=tracer_provider, meter_provider=meter_provider, **options
    )
    return [make()], [make()]


CONFIGS: dict[str, Callable[[], tuple[list[Interceptor], list[Interceptor]]]] = {
    "none": lambda: ([], []),
    "3 empty, client": lambda: ([Empty(), Empty(), Empty()], []),
    "3 empty, server": lambda: ([], [Empty(), Empty(), Empty()]),
    "3 empty, both sides": lambda: ([Empty(), Empty(), Empty()], [Empty(), Empty(), Empty()]),
    "otel, both sides": _otel,
    "otel, both sides, with size metrics": lambda: _otel(message_sizes=True),
    "otel, both sides, 10% of traces sampled": lambda: _otel(sampled=0.1, trust_remote=True),
}
if "--no-otel" in sys.argv:
    for name in [n for n in CONFIGS if n.startswith("otel")]:
        del CONFIGS[name]


async def _echo(request: S, ctx: RequestContext) -> S:
    return request


def _app(server_side: list[Interceptor]) -> ConnectASGIApplication:
    return ConnectASGIApplication(
        [unary_handler(ECHO, _echo)], options=ServerOptions(interceptors=server_side)
    )


def _client(config: str, url: str | None) -> AsyncConnectClient:
    """In memory (``url`` None) or over HTTP/1.1 to the server of ``url``."""
    client_side, server_side = CONFIGS[config]()
    options = ClientOptions(interceptors=client_side)
    if url is None:
        return AsyncConnectClient("http://bench", ASGITransport(_app(server_side)), options=options)
    return AsyncConnectClient(url, HTTP1Transport(), options=options)


def _serve(config: str) -> None:
    """A uvicorn server (httptools, one process) with the server side of ``config``."""
    import uvicorn

    _, server_side = CONFIGS[config]()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    print(port, flush=True)
    uvicorn.run(
        _app(server_side), host="127.0.0.1", port=port, log_level="warning", http="httptools"
    )


def _start_servers(names: list[str]) -> tuple[dict[str, str], list[subprocess.Popen[str]]]:
    urls: dict[str, str] = {}
    procs = []
    for name in names:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", name], stdout=subprocess.PIPE, text=True
        )
        procs.append(proc)
        assert proc.stdout is not None
        urls[name] = f"http://127.0.0.1:{proc.stdout.readline().strip()}"
    for url in urls.values():  # wait until each accepts connections
        host, port = url.removeprefix("http://").split(":")
        for _ in range(200):
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
    return urls, procs


async def _rate(client: AsyncConnectClient, calls: int, concurrency: int = 1) -> float:
    request = S(value="hello")
    for _ in range(200):  # warm up
        await client.unary(ECHO, request)

    async def worker(n: int) -> None:
        for _ in range(n):
            await client.unary(ECHO, request)

    start = time.perf_counter()
    await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))
    return (calls // concurrency * concurrency) / (time.perf_counter() - start)


async def _run(rounds: int, calls: int, mode: str) -> dict[str, Any]:
    """``mode``: "memory", "sockets" (sequential) or "sockets-c16"."""
    names = list(CONFIGS)
    procs: list[subprocess.Popen[str]] = []
    if mode == "memory":
        clients = {name: _client(name, None) for name in names}
    else:
        urls, procs = _start_servers(names)
        clients = {name: _client(name, urls[name]) for name in names}
    concurrency = 16 if mode == "sockets-c16" else 1
    try:
        return await _rounds(names, clients, rounds, calls, concurrency, mode)
    finally:
        for client in clients.values():
            await client.close()
        for proc in procs:
            proc.terminate()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


async def _rounds(
    names: list[str],
    clients: dict[str, AsyncConnectClient],
    rounds: int,
    calls: int,
    concurrency: int,
    mode: str,
) -> dict[str, Any]:
    rates: dict[str, list[float]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names[1:]}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        got = {}
        for name in order:
            got[name] = await _rate(clients[name], calls, concurrency)
        for name in names:
            rates[name].append(got[name])
        for name in names[1:]:
            ratios[name].append(got[name] / got["none"])
        print(
            f"{mode} round {r + 1}/{rounds}: " + ", ".join(f"{n} {got[n]:,.0f}/s" for n in names),
            file=sys.stderr,
            flush=True,
        )
    return {"rates": rates, "ratios": ratios}


MODES = {
    "memory": "in-memory transport, client and server in one process, sequential",
    "sockets": "HTTP1Transport → uvicorn (httptools) in its own process, sequential",
    "sockets-c16": "HTTP1Transport → uvicorn in its own process, 16 calls at a time",
}


def _report(result: dict[str, Any], calls: int, mode: str) -> str:
    lines = [
        f"### Unary calls: {MODES[mode]}",
        "",
        f"{calls:,} calls per configuration and round; median (min-max).",
        "",
        "| configuration | calls/s | throughput vs none | cost |",
        "| --- | --- | --- | --- |",
    ]
    for name, values in result["rates"].items():
        rate = f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"
        if name == "none":
            lines.append(f"| {name} | {rate} | 1.00 | - |")
            continue
        r = result["ratios"][name]
        med = statistics.median(r)
        lines.append(
            f"| {name} | {rate} | {med:.3f} ({min(r):.3f}-{max(r):.3f}) | {100 * (1 - med):.1f}% |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 1,000 calls")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--no-otel", action="store_true", help="skip OpenTelemetry")
    parser.add_argument("--modes", default=",".join(MODES), help="memory,sockets,sockets-c16")
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # a server process of the run
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve)
        return 0
    rounds, calls = (3, 1000) if args.quick else (args.rounds, args.calls)
    sections = ["## Interceptor overhead", ""]
    results = {}
    for mode in args.modes.split(","):
        results[mode] = asyncio.run(_run(rounds, calls, mode))
        sections.append(_report(results[mode], calls, mode))
    report = "\n".join(sections)
    print(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "interceptors.md").write_text(report)
    (out / "interceptors.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
