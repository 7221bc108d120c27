"""Soak test: many RPCs of every kind, with chaos, then check that resources come back.

Usage (``tools/soak.sh`` wraps it)::

    uv run python tools/soak.py [--rpcs N] [--seed S] [--concurrency C] [--quick]

Three processes, all on 127.0.0.1:

* **server**: a soak service (unary, server-streaming, client-streaming and bidi methods over
  ``google.protobuf.BytesValue``) in our ``ConnectASGIApplication`` under hypercorn
  (HTTP/1.1). Request headers tell a handler how long to sleep, how many messages to send
  and whether to fail, so cancellations and deadlines land mid-flight.
* **proxy**: a TCP proxy between client and server that kills connections at random (with
  a TCP reset): each connection has a random lifetime, and each forwarded chunk has a small
  chance of killing it. Idle keep-alive connections, requests being sent and responses
  being read are all hit.
* **driver** (this process): the client. Our ``AsyncConnectClient`` over both transports,
  an ``aiohttp.ClientSession`` and ``connectrpc.client.HTTP1Transport`` (each with the proto
  codec and with JSON plus gzip), with ``--concurrency`` calls in flight. Each call picks,
  from the seed, its kind, transport and one action: a clean call, a short deadline, a
  cancellation of the awaiting task, an early close of the response stream, a request
  stream that raises, or an error (or crash) in the handler.

Resources are measured in each process from ``/proc/self`` after ``gc.collect()``: open
file descriptors, asyncio tasks, RSS and the number of objects the garbage collector
tracks. The children report theirs on SIGUSR1, as one JSON line on stdout, so measuring
opens no connection. The baseline is taken after a warm-up and once everything is idle (the
server closes idle keep-alive connections after ``--keep-alive`` seconds, so the clients'
pools drain); the final figures once the load is done and the same margins hold again, or
after ``--settle`` seconds. Margins (``--fd-margin`` and so on):

* file descriptors: at most +5 over the baseline, in every process;
* asyncio tasks: back to the baseline exactly;
* RSS: at most +max(25 %, 30 MiB) (RSS is noisy: the allocator keeps freed arenas, and
  the high-water mark of 48 calls in flight, some with 64 KiB messages, stays);
* gc-tracked objects: at most +max(2 %, 10,000), so a leak of one container object per
  call is caught well before RSS shows it (in a full run it would be +100,000).

Besides, the run fails if a call hangs (no outcome after 60 s), an OK call returns the wrong
payload, a call raises something other than ``ConnectError`` (or the request stream's own
exception, or ``CancelledError`` for a cancelled call), a closed stream does not report
``canceled``, handlers are still running or proxied connections still open at the end, the
event loop of any process reports an unhandled error, the server logs an error (other than
for the crashes the client asked for), the client gets a ``ResourceWarning``, or the run
exceeds ``--max-seconds``. One kind of loop error is reported but not failed on: aiohttp's
own request-body writer task failing after its response was released (aiohttp never
retrieves that task's exception). It prints the outcome counts per transport, kind and
action, throughput, duration, and the resource table. Codes other than the ones asked for
come from the proxy's resets (``unavailable``, and ``internal`` on the aiohttp path when a
response body is cut short). Exit status: 0 pass, 1 a check failed, 2 the harness failed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import gc
import json
import logging
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TextIO

import aiohttp
from google.protobuf import wrappers_pb2

from connectrpc.client import AsyncConnectClient, ClientOptions, HTTP1Transport
from connectrpc.errors import Code, ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.server import (
    ConnectASGIApplication,
    RequestContext,
    bidi_stream_handler,
    client_stream_handler,
    server_stream_handler,
    unary_handler,
)

B = wrappers_pb2.BytesValue
SERVICE = "connectrpc.soak.v1.SoakService"
UNARY: MethodInfo[B, B] = MethodInfo(
    SERVICE, "Unary", B, B, StreamType.UNARY, IdempotencyLevel.NO_SIDE_EFFECTS
)
SERVER_STREAM: MethodInfo[B, B] = MethodInfo(
    SERVICE, "ServerStream", B, B, StreamType.SERVER_STREAM
)
CLIENT_STREAM: MethodInfo[B, B] = MethodInfo(
    SERVICE, "ClientStream", B, B, StreamType.CLIENT_STREAM
)
BIDI: MethodInfo[B, B] = MethodInfo(SERVICE, "Bidi", B, B, StreamType.BIDI_STREAM)

SCRIPT = os.path.abspath(__file__)
HOST = "127.0.0.1"  # everything stays on loopback
RPC_WATCHDOG_SECONDS = 60.0
STATS_PREFIX = "stats "
CRASH = "soak: asked to crash"

# Error codes the handler may be asked to fail with.
FAIL_CODES = (
    Code.INVALID_ARGUMENT,
    Code.NOT_FOUND,
    Code.FAILED_PRECONDITION,
    Code.ABORTED,
    Code.RESOURCE_EXHAUSTED,
    Code.OUT_OF_RANGE,
    Code.PERMISSION_DENIED,
)


# --- measuring a process ------------------------------------------------------------------


def fd_count() -> int:
    # Listing the directory opens one descriptor itself: the same in every measurement.
    return len(os.listdir("/proc/self/fd"))


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure_self() -> dict[str, int]:
    """This process's resources, after a full collection. Call it from the event loop."""
    gc.collect()
    return {
        "fds": fd_count(),
        "tasks": len(asyncio.all_tasks()),
        "rss": rss_bytes(),
        "objects": len(gc.get_objects()),
    }


class ErrorCounter(logging.Handler):
    """Counts log records at ERROR and above; keeps the first few."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.expected = 0
        self.aiohttp_writer = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, RuntimeError) and str(exc) == CRASH:
            self.expected += 1  # a handler crash the client asked for
            return
        self.count += 1
        if len(self.first) < 5:
            self.first.append(f"{record.name}: {record.getMessage()}"[:500])


def install_loop_error_counter(loop: asyncio.AbstractEventLoop, counter: ErrorCounter) -> None:
    """Count what the loop would report as unhandled (``Task exception was never retrieved``)."""

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        exc = context.get("exception")
        future = context.get("future")
        coro = future.get_coro() if isinstance(future, asyncio.Task) else None
        if getattr(coro, "__qualname__", "") == "ClientRequest.write_bytes":
            # aiohttp's own request-body writer task failed after the response was released
            # (the connection was reset while it still wrote): aiohttp never retrieves that
            # exception. Reported separately, not as a failure of ours.
            counter.aiohttp_writer += 1
            return
        record = logging.LogRecord("asyncio", logging.ERROR, "", 0, "%s", (message,), None)
        if exc is not None:
            record.args = (f"{message}: {type(exc).__name__}: {exc}",)
        counter.handle(record)
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def serve_stats_on_sigusr1(
    loop: asyncio.AbstractEventLoop, extra: Callable[[], dict[str, Any]]
) -> None:
    """On SIGUSR1, print one ``stats {json}`` line. A loop callback, not a task."""

    def dump() -> None:
        stats: dict[str, Any] = dict(measure_self())
        stats.update(extra())
        print(STATS_PREFIX + json.dumps(stats), flush=True)

    loop.add_signal_handler(signal.SIGUSR1, dump)


def stop_on_stdin_eof(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Children stop when the driver goes away (its end of our stdin closes)."""

    def readable() -> None:
        try:
            data = os.read(0, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(0)
            stop.set()

    loop.add_reader(0, readable)


# --- the server ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Directives:
    """What the client asks of a handler, in ``soak-*`` request headers."""

    delay: float = 0.0  # seconds before the response (unary) or between messages
    count: int = 1  # server stream: messages to send
    fail: str = ""  # a code's wire name, or "crash" for an unexpected exception
    fail_after: int = 0  # streams: messages sent before failing

    @classmethod
    def of(cls, ctx: RequestContext) -> Directives:
        h = ctx.request_headers
        return cls(
            delay=int(h.get("soak-delay-ms", "0")) / 1000,
            count=int(h.get("soak-count", "1")),
            fail=h.get("soak-fail", ""),
            fail_after=int(h.get("soak-fail-after", "0")),
        )

    def headers(self) -> dict[str, str]:
        out = {"soak-delay-ms": str(round(self.delay * 1000)), "soak-count": str(self.count)}
        if self.fail:
            out["soak-fail"] = self.fail
            out["soak-fail-after"] = str(self.fail_after)
        return out

    def raise_failure(self) -> None:
        if self.fail == "crash":
            raise RuntimeError(CRASH)
        code = Code.from_wire(self.fail)
        if code is not None:
            raise ConnectError(code, "soak: asked to fail", metadata={"soak-failed": "yes"})


class SoakService:
    """Handlers for the four kinds; they count how each call ended."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()

    @contextlib.contextmanager
    def _track(self) -> Iterator[None]:
        self.counts["started"] += 1
        try:
            yield
        except (asyncio.CancelledError, GeneratorExit):
            self.counts["cancelled"] += 1
            raise
        except ConnectError:
            self.counts["error"] += 1
            raise
        except Exception as exc:
            if type(exc).__name__ == "_ClientGoneError":  # the runtime's "client went away"
                self.counts["client_gone"] += 1
            else:
                self.counts["crashed"] += 1
                if str(exc) != CRASH:
                    self.counts[f"crashed:{type(exc).__name__}: {exc}"[:200]] += 1
            raise
        else:
            self.counts["ok"] += 1

    def in_flight(self) -> int:
        c = self.counts
        ended = ("ok", "error", "crashed", "cancelled", "client_gone")
        return c["started"] - sum(c[k] for k in ended)

    async def unary(self, request: B, ctx: RequestContext) -> B:
        with self._track():
            d = Directives.of(ctx)
            if d.delay:
                await asyncio.sleep(d.delay)
            d.raise_failure()
            return B(value=request.value)

    async def server_stream(self, request: B, ctx: RequestContext) -> AsyncIterator[B]:
        with self._track():
            d = Directives.of(ctx)
            for i in range(d.count):
                if d.fail and i == d.fail_after:
                    d.raise_failure()
                if d.delay:
                    await asyncio.sleep(d.delay)
                yield B(value=request.value + i.to_bytes(4, "big"))
            if d.fail and d.fail_after >= d.count:
                d.raise_failure()

    async def client_stream(self, requests: AsyncIterator[B], ctx: RequestContext) -> B:
        with self._track():
            d = Directives.of(ctx)
            parts = []
            async for request in requests:
                parts.append(request.value)
                if d.fail and len(parts) > d.fail_after:
                    d.raise_failure()
            if d.delay:
                await asyncio.sleep(d.delay)
            if d.fail:
                d.raise_failure()
            return B(value=b"".join(parts))

    async def bidi(self, requests: AsyncIterator[B], ctx: RequestContext) -> AsyncIterator[B]:
        with self._track():
            d = Directives.of(ctx)
            sent = 0
            async for request in requests:
                if d.fail and sent == d.fail_after:
                    d.raise_failure()
                if d.delay:
                    await asyncio.sleep(d.delay)
                yield B(value=request.value)
                sent += 1
            if d.fail:
                d.raise_failure()


def soak_app(service: SoakService) -> ConnectASGIApplication:
    return ConnectASGIApplication(
        [
            unary_handler(UNARY, service.unary),
            server_stream_handler(SERVER_STREAM, service.server_stream),
            client_stream_handler(CLIENT_STREAM, service.client_stream),
            bidi_stream_handler(BIDI, service.bidi),
        ]
    )


def listening_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def run_server(keep_alive: float) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    loop = asyncio.get_running_loop()
    errors = ErrorCounter()
    logging.getLogger().addHandler(errors)
    install_loop_error_counter(loop, errors)
    service = SoakService()
    sock = listening_socket()
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns the socket from here on
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.keep_alive_timeout = keep_alive
    config.graceful_timeout = 1.0
    stop = asyncio.Event()
    stop_on_stdin_eof(loop, stop)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    serve_stats_on_sigusr1(
        loop,
        lambda: {
            "handlers": dict(service.counts),
            "in_flight": service.in_flight(),
            "errors": errors.count,
            "expected_errors": errors.expected,
            "first_errors": errors.first,
        },
    )
    print(f"listening on http://{HOST}:{port}", flush=True)
    await serve(soak_app(service), config, shutdown_trigger=stop.wait, mode="asgi")


# --- the proxy ----------------------------------------------------------------------------


class ChaosProxy:
    """Forwards 127.0.0.1 connections to the server; resets some of them at random."""

    def __init__(
        self, upstream_port: int, rng: random.Random, lifetime: float, chunk_kill: float
    ) -> None:
        self._upstream_port = upstream_port
        self._rng = rng
        self._lifetime = lifetime
        self._chunk_kill = chunk_kill
        self.open = 0
        self.counts: collections.Counter[str] = collections.Counter()

    async def handle(self, down_reader: asyncio.StreamReader, down: asyncio.StreamWriter) -> None:
        self.counts["accepted"] += 1
        self.open += 1
        try:
            try:
                up_reader, up = await asyncio.open_connection(HOST, self._upstream_port)
            except OSError:
                self.counts["upstream_refused"] += 1
                down.close()
                with contextlib.suppress(OSError):
                    await down.wait_closed()
                return
            await self._forward(down_reader, down, up_reader, up)
        finally:
            self.open -= 1

    async def _forward(
        self,
        down_reader: asyncio.StreamReader,
        down: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up: asyncio.StreamWriter,
    ) -> None:
        killed = asyncio.Event()

        def kill(reason: str) -> None:
            if killed.is_set():
                return
            killed.set()
            self.counts[f"killed_{reason}"] += 1
            # Reset one side or both; the other, if any, is closed normally below.
            for w in self._rng.choice(((down,), (up,), (down, up))):
                reset(w)

        loop = asyncio.get_running_loop()
        timer = loop.call_later(self._rng.expovariate(1 / self._lifetime), kill, "lifetime")
        pumps = [
            asyncio.ensure_future(self._pump(down_reader, up, kill)),
            asyncio.ensure_future(self._pump(up_reader, down, kill)),
            asyncio.ensure_future(killed.wait()),
        ]
        try:
            # Either direction ending (EOF, error, kill) ends the connection.
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for w in (down, up):
                w.close()
            for w in (down, up):
                with contextlib.suppress(OSError):
                    await w.wait_closed()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        kill: Callable[[str], None],
    ) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                if self._rng.random() < self._chunk_kill:
                    kill("in_flight")
                    return
                writer.write(data)
                await writer.drain()
        except OSError:
            return


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST rather than a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def run_proxy(upstream_port: int, seed: int, lifetime: float, chunk_kill: float) -> None:
    loop = asyncio.get_running_loop()
    errors = ErrorCounter()
    logging.getLogger().addHandler(errors)
    install_loop_error_counter(loop, errors)
    proxy = ChaosProxy(upstream_port, random.Random(seed), lifetime, chunk_kill)
    server = await asyncio.start_server(proxy.handle, sock=listening_socket())
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    stop_on_stdin_eof(loop, stop)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    serve_stats_on_sigusr1(
        loop,
        lambda: {
            "open_connections": proxy.open,
            "proxy": dict(proxy.counts),
            "errors": errors.count,
            "first_errors": errors.first,
        },
    )
    print(f"listening on http://{HOST}:{port}", flush=True)
    async with server:
        await stop.wait()


# --- the driver: child processes ----------------------------------------------------------


class Child:
    """A server or proxy process: started with this script, measured over SIGUSR1."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, stderr: TextIO) -> None:
        self.name = name
        self.proc = proc
        self.stderr = stderr
        self.url = ""

    @classmethod
    async def start(cls, name: str, *args: str) -> Child:
        stderr = tempfile.TemporaryFile("w+", prefix=f"soak-{name}-")  # noqa: SIM115
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            SCRIPT,
            "--role",
            name,
            *args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        child = cls(name, proc, stderr)
        line = await child._line(30)
        if not line.startswith("listening on "):
            raise RuntimeError(f"{name} did not start: {line!r}\n{child.stderr_text()}")
        child.url = line.removeprefix("listening on ")
        return child

    async def _line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        return raw.decode().strip()

    async def stats(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGUSR1)
        line = await self._line(30)
        if not line.startswith(STATS_PREFIX):
            raise RuntimeError(f"{self.name}: expected stats, got {line!r}")
        result: dict[str, Any] = json.loads(line.removeprefix(STATS_PREFIX))
        return result

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        assert self.proc.returncode is not None
        return self.proc.returncode


# --- the driver: the workload -------------------------------------------------------------

KINDS = ("unary", "server_stream", "client_stream", "bidi")
TRANSPORTS = ("aiohttp", "http1")
CODECS = ("proto", "json+gzip")
# Actions and their weights.
ACTIONS = {
    "clean": 45,
    "deadline": 15,  # a deadline of 2-60 ms, often shorter than the handler takes
    "cancel": 15,  # the awaiting task is cancelled after 0-40 ms
    "close_early": 10,  # leave the response stream after k messages (unary: cancel at once)
    "request_raises": 5,  # the request iterator raises (client and bidi streams)
    "server_error": 7,  # the handler raises ConnectError, possibly mid-stream
    "server_crash": 3,  # the handler raises RuntimeError
}


class RequestStreamError(Exception):
    """Raised by a request iterator on purpose."""


@dataclasses.dataclass(frozen=True)
class Plan:
    kind: str
    transport: str
    codec: str
    action: str
    raising_api: bool  # the raising methods rather than the call_ ones
    use_get: bool
    payload: bytes
    messages: int  # request messages (client, bidi)
    directives: Directives
    timeout: float | None
    cancel_after: float
    stop_after: int  # messages read (close_early) or sent (request_raises)

    @classmethod
    def random(cls, rng: random.Random) -> Plan:
        kind = rng.choice(KINDS)
        action = rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
        if action == "request_raises" and kind in ("unary", "server_stream"):
            action = "cancel"
        size = 65536 if rng.random() < 0.02 else rng.randrange(0, 2048)
        messages = rng.randrange(1, 9)
        count = rng.randrange(1, 9)
        slow = action in ("deadline", "cancel", "close_early") or rng.random() < 0.1
        delay = rng.uniform(0.0, 0.03) if slow else 0.0
        fail = ""
        if action == "server_error":
            fail = rng.choice(FAIL_CODES).value
        elif action == "server_crash":
            fail = "crash"
        fail_after = rng.randrange(0, max(count, messages) + 1)
        return cls(
            kind=kind,
            transport=rng.choice(TRANSPORTS),
            codec=rng.choice(CODECS),
            action=action,
            raising_api=rng.random() < 0.3,
            # GET puts the message in the URL: only for small ones (a 64 KiB message makes
            # a URL hypercorn refuses with HTTP 431).
            use_get=kind == "unary" and size <= 2048 and rng.random() < 0.2,
            payload=rng.randbytes(size),
            messages=messages,
            directives=Directives(delay=delay, count=count, fail=fail, fail_after=fail_after),
            timeout=rng.uniform(0.002, 0.06) if action == "deadline" else None,
            cancel_after=rng.uniform(0.0, 0.04),
            stop_after=rng.randrange(0, max(count, messages)),
        )


def plan_stream(rng: random.Random, n: int) -> Iterator[Plan]:
    for _ in range(n):
        yield Plan.random(rng)


class Outcomes:
    def __init__(self) -> None:
        self.by_transport: collections.Counter[tuple[str, str]] = collections.Counter()
        self.by_action: collections.Counter[tuple[str, str]] = collections.Counter()
        self.by_kind: collections.Counter[tuple[str, str]] = collections.Counter()
        self.problems: collections.Counter[str] = collections.Counter()
        self.first_problems: list[str] = []
        self.samples: dict[tuple[str, str, str, str], str] = {}

    def add(self, plan: Plan, outcome: str) -> None:
        self.by_transport[plan.transport, outcome] += 1
        self.by_action[plan.action, outcome] += 1
        self.by_kind[plan.kind, outcome] += 1

    def problem(self, plan: Plan, what: str) -> None:
        self.problems[what.split(":", 1)[0]] += 1
        if len(self.first_problems) < 10:
            self.first_problems.append(
                f"{what} ({plan.kind} over {plan.transport}/{plan.codec}, action {plan.action})"
            )

    def code(self, plan: Plan, error: ConnectError | None) -> str:
        """The outcome of a call that ended with ``error``; keeps a sample message."""
        if error is None:
            return "ok"
        key = (plan.action, error.code.value, plan.transport, plan.kind)
        if key not in self.samples:
            self.samples[key] = str(error)[:200]
        return error.code.value

    def total(self) -> int:
        return sum(self.by_transport.values())


async def _requests(plan: Plan) -> AsyncIterator[B]:
    raise_at = min(plan.stop_after, plan.messages) if plan.action == "request_raises" else -1
    for i in range(plan.messages):
        if i == raise_at:
            raise RequestStreamError("soak: the request stream failed")
        yield B(value=plan.payload[i::7] if len(plan.payload) > 7 else plan.payload)
        if i % 3 == 2:
            await asyncio.sleep(0)
    if raise_at == plan.messages:
        raise RequestStreamError("soak: the request stream failed at its end")


def _expected_requests(plan: Plan) -> list[bytes]:
    return [
        plan.payload[i::7] if len(plan.payload) > 7 else plan.payload for i in range(plan.messages)
    ]


async def one_call(client: AsyncConnectClient, plan: Plan, outcomes: Outcomes) -> str:
    """Make one call as planned; returns its outcome, records problems."""
    headers = plan.directives.headers()
    timeout = plan.timeout
    early = plan.action == "close_early"
    if plan.kind == "unary":
        request = B(value=plan.payload)
        if plan.raising_api:
            try:
                response: B | None = await client.unary(
                    UNARY,
                    request,
                    extra_headers=headers,
                    timeout_seconds=timeout,
                    use_get=plan.use_get,
                )
            except ConnectError as exc:
                return outcomes.code(plan, exc)
        else:
            unary_out = await client.call_unary(
                UNARY, request, extra_headers=headers, timeout_seconds=timeout, use_get=plan.use_get
            )
            if unary_out.error() is not None:
                return outcomes.code(plan, unary_out.error())
            response = unary_out.message()
        if response is None or response.value != plan.payload:
            outcomes.problem(plan, "wrong: unary response differs from the request")
        return "ok"

    if plan.kind == "client_stream":
        try:
            if plan.raising_api:
                try:
                    response = await client.client_stream(
                        CLIENT_STREAM,
                        _requests(plan),
                        extra_headers=headers,
                        timeout_seconds=timeout,
                    )
                except ConnectError as exc:
                    return outcomes.code(plan, exc)
            else:
                unary_out = await client.call_client_stream(
                    CLIENT_STREAM, _requests(plan), extra_headers=headers, timeout_seconds=timeout
                )
                if unary_out.error() is not None:
                    return outcomes.code(plan, unary_out.error())
                response = unary_out.message()
        except RequestStreamError:
            return "request stream raised"
        if plan.action == "request_raises":
            outcomes.problem(plan, "unexpected: ok although the request stream raised")
        if response is None or response.value != b"".join(_expected_requests(plan)):
            outcomes.problem(plan, "wrong: client-stream response differs")
        return "ok"

    # Server streams and bidi.
    if plan.kind == "server_stream":
        expected = [plan.payload + i.to_bytes(4, "big") for i in range(plan.directives.count)]
    else:
        expected = _expected_requests(plan)
    got: list[bytes] = []
    try:
        if plan.raising_api:
            if plan.kind == "server_stream":
                stream = client.server_stream(
                    SERVER_STREAM,
                    B(value=plan.payload),
                    extra_headers=headers,
                    timeout_seconds=timeout,
                )
            else:
                stream = client.bidi_stream(
                    BIDI, _requests(plan), extra_headers=headers, timeout_seconds=timeout
                )
            try:
                async for message in stream:
                    got.append(message.value)
                    if early and len(got) > plan.stop_after:
                        # Leave the loop without closing the generator: left to the
                        # finalizer, as in user code that breaks out of `async for`.
                        return "closed early"
            except ConnectError as exc:
                return outcomes.code(plan, exc)
            error = None
        else:
            if plan.kind == "server_stream":
                output = await client.call_server_stream(
                    SERVER_STREAM,
                    B(value=plan.payload),
                    extra_headers=headers,
                    timeout_seconds=timeout,
                )
            else:
                output = await client.call_bidi_stream(
                    BIDI, _requests(plan), extra_headers=headers, timeout_seconds=timeout
                )
            async with output:
                async for message in output:
                    got.append(message.value)
                    if early and len(got) > plan.stop_after:
                        break
            error = output.error()
            if early and len(got) > plan.stop_after:
                if error is None or error.code is not Code.CANCELED:
                    outcomes.problem(plan, f"unexpected: closed stream reports {error!r}")
                return "closed early"
    except RequestStreamError:
        return "request stream raised"
    if error is not None:
        if got != expected[: len(got)]:
            outcomes.problem(plan, "wrong: messages before the error differ")
        return outcomes.code(plan, error)
    if plan.action == "request_raises":
        outcomes.problem(plan, "unexpected: ok although the request stream raised")
    if got != expected:
        outcomes.problem(
            plan, f"wrong: {plan.kind} returned {len(got)} of {len(expected)} messages"
        )
    return "ok"


async def guarded_call(client: AsyncConnectClient, plan: Plan, outcomes: Outcomes) -> None:
    """One call with its chaos: cancellation, and a watchdog against hangs."""
    cancel = plan.action == "cancel" or (plan.action == "close_early" and plan.kind == "unary")
    task = asyncio.ensure_future(one_call(client, plan, outcomes))
    try:
        if cancel:
            done, _ = await asyncio.wait({task}, timeout=plan.cancel_after)
            if not done:
                task.cancel()
        done, _ = await asyncio.wait({task}, timeout=RPC_WATCHDOG_SECONDS)
    finally:
        if not task.done():  # the watchdog fired, or this worker is being cancelled
            task.cancel()
    if not done:
        outcome = "hung"
        outcomes.problem(plan, f"hung: no outcome after {RPC_WATCHDOG_SECONDS:.0f} s")
        await asyncio.wait({task}, timeout=5)
    elif task.cancelled():
        outcome = "cancelled"
        if not cancel:
            outcomes.problem(plan, "unexpected: CancelledError although nobody cancelled")
    elif task.exception() is not None:
        exc = task.exception()
        outcome = f"raised {type(exc).__name__}"
        outcomes.problem(plan, f"raised: {type(exc).__name__}: {exc}"[:300])
    else:
        outcome = task.result()
    outcomes.add(plan, outcome)


async def run_load(
    clients: dict[tuple[str, str], AsyncConnectClient],
    plans: Iterator[Plan],
    concurrency: int,
    outcomes: Outcomes,
) -> None:
    it = plans  # shared by the workers: each plan is run once

    async def worker() -> None:
        for plan in it:
            await guarded_call(clients[plan.transport, plan.codec], plan, outcomes)

    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    try:
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


# --- the driver: measuring and reporting --------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Margins:
    fds: int
    tasks: int
    rss_fraction: float
    rss_bytes: int
    objects_fraction: float
    objects: int

    def limit(self, metric: str, baseline: int) -> int:
        if metric == "fds":
            return baseline + self.fds
        if metric == "tasks":
            return baseline + self.tasks
        if metric == "rss":
            return baseline + max(round(baseline * self.rss_fraction), self.rss_bytes)
        return baseline + max(round(baseline * self.objects_fraction), self.objects)

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """The ``--*-margin`` options, with the defaults the module docs give."""
        parser.add_argument("--fd-margin", type=int, default=5)
        parser.add_argument("--task-margin", type=int, default=0)
        parser.add_argument("--rss-margin-percent", type=float, default=25.0)
        parser.add_argument("--rss-margin-mib", type=int, default=30)
        parser.add_argument("--objects-margin-percent", type=float, default=2.0)
        parser.add_argument("--objects-margin", type=int, default=10_000)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Margins:
        return cls(
            fds=args.fd_margin,
            tasks=args.task_margin,
            rss_fraction=args.rss_margin_percent / 100,
            rss_bytes=args.rss_margin_mib * 2**20,
            objects_fraction=args.objects_margin_percent / 100,
            objects=args.objects_margin,
        )


def watch_errors(loop: asyncio.AbstractEventLoop) -> tuple[ErrorCounter, list[str]]:
    """Count the errors this process logs (and the loop's unhandled ones) and collect its
    ResourceWarnings: either fails a soak."""
    errors = ErrorCounter()
    logging.getLogger().addHandler(errors)
    install_loop_error_counter(loop, errors)
    resource_warnings: list[str] = []

    def showwarning(message: Warning | str, category: type[Warning], *rest: Any) -> None:
        resource_warnings.append(f"{category.__name__}: {message}"[:300])

    warnings.simplefilter("always", ResourceWarning)
    warnings.showwarning = showwarning  # type: ignore[assignment]
    return errors, resource_warnings


METRICS = ("fds", "tasks", "rss", "objects")
PROCESSES = ("client", "server", "proxy")


async def snapshot(server: Child, proxy: Child) -> dict[str, dict[str, Any]]:
    return {"client": measure_self(), "server": await server.stats(), "proxy": await proxy.stats()}


def quiet(snap: dict[str, dict[str, Any]]) -> bool:
    return bool(snap["server"]["in_flight"] == 0 and snap["proxy"]["open_connections"] == 0)


def within(
    snap: dict[str, dict[str, Any]], base: dict[str, dict[str, Any]], margins: Margins
) -> bool:
    return all(snap[p][m] <= margins.limit(m, base[p][m]) for p in PROCESSES for m in METRICS)


async def settle(
    server: Child,
    proxy: Child,
    seconds: float,
    base: dict[str, dict[str, Any]] | None,
    margins: Margins,
) -> tuple[dict[str, dict[str, Any]], float]:
    """Poll until idle: nothing in flight, no proxied connection, and (with a baseline) the
    margins hold; without one, until fds and tasks stop changing. Gives up after ``seconds``
    and returns the last snapshot and the time taken."""
    start = time.monotonic()
    previous: dict[str, dict[str, Any]] | None = None
    while True:
        await asyncio.sleep(0.25)
        snap = await snapshot(server, proxy)
        elapsed = time.monotonic() - start
        if quiet(snap):
            if base is not None and within(snap, base, margins):
                return snap, elapsed
            if (
                base is None
                and previous is not None
                and all(snap[p][m] == previous[p][m] for p in PROCESSES for m in ("fds", "tasks"))
            ):
                return snap, elapsed
        if elapsed > seconds:
            return snap, elapsed
        previous = snap


def fmt(metric: str, value: int) -> str:
    if metric == "rss":
        return f"{value / 2**20:.1f} MiB"
    return str(value)


def fmt_delta(metric: str, value: int) -> str:
    if metric == "rss":
        return f"{value / 2**20:+.1f} MiB"
    return f"{value:+d}"


def print_table(title: str, rows: list[list[str]]) -> None:
    print(title)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  " + "  ".join(cells).rstrip())
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def outcome_table(
    counter: collections.Counter[tuple[str, str]], columns: list[str]
) -> list[list[str]]:
    names = sorted({o for _, o in counter}, key=lambda o: (o != "ok", o))
    rows = [["outcome", *columns, "total"]]
    for name in names:
        cells = [counter[c, name] for c in columns]
        rows.append([name, *map(str, cells), str(sum(cells))])
    totals = [sum(v for (c, _), v in counter.items() if c == col) for col in columns]
    rows.append(["total", *map(str, totals), str(sum(totals))])
    return rows


def resource_rows(
    base: dict[str, dict[str, Any]], final: dict[str, dict[str, Any]], margins: Margins
) -> tuple[list[list[str]], list[str]]:
    rows = [["process", "metric", "baseline", "final", "delta", "limit", ""]]
    failures = []
    for p in PROCESSES:
        for m in METRICS:
            b, f = base[p][m], final[p][m]
            limit = margins.limit(m, b)
            ok = f <= limit
            if not ok:
                failures.append(f"{p} {m}: {fmt(m, b)} -> {fmt(m, f)} (limit {fmt(m, limit)})")
            rows.append(
                [
                    p,
                    m,
                    fmt(m, b),
                    fmt(m, f),
                    fmt_delta(m, f - b),
                    fmt(m, limit),
                    "ok" if ok else "FAIL",
                ]
            )
    return rows, failures


# --- the driver -----------------------------------------------------------------------------


async def drive(args: argparse.Namespace) -> int:
    client_errors, resource_warnings = watch_errors(asyncio.get_running_loop())
    margins = Margins.from_args(args)
    # Plans are drawn as the workers need them (a list of 100,000 would hold its payloads).
    warmup_plans = plan_stream(random.Random(args.seed), args.warmup)
    plans = plan_stream(random.Random(args.seed + 1_000_003), args.rpcs)

    server = await Child.start("server", "--keep-alive", str(args.keep_alive))
    try:
        proxy = await Child.start(
            "proxy",
            "--upstream",
            server.url.rsplit(":", 1)[1],
            "--seed",
            str(args.seed),
            "--lifetime",
            str(args.lifetime),
            "--chunk-kill",
            str(args.chunk_kill),
        )
        try:
            return await soak(
                args, server, proxy, margins, warmup_plans, plans, client_errors, resource_warnings
            )
        finally:
            await proxy.stop()
    finally:
        await server.stop()


async def soak(
    args: argparse.Namespace,
    server: Child,
    proxy: Child,
    margins: Margins,
    warmup_plans: Iterator[Plan],
    plans: Iterator[Plan],
    client_errors: ErrorCounter,
    resource_warnings: list[str],
) -> int:
    print(
        f"soak: {args.rpcs} RPCs after {args.warmup} warm-up, seed {args.seed}, "
        f"concurrency {args.concurrency}; server pid {server.proc.pid} at {server.url}, "
        f"chaos proxy pid {proxy.proc.pid} at {proxy.url} (mean connection lifetime "
        f"{args.lifetime} s, kill chance per chunk {args.chunk_kill})",
        flush=True,
    )
    failures: list[str] = []
    started = time.monotonic()
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency))
    http1 = HTTP1Transport(max_connections_per_origin=args.concurrency)
    json_gzip = ClientOptions(codec="json", send_compression="gzip")
    clients = {
        ("aiohttp", "proto"): AsyncConnectClient(proxy.url, session),
        ("aiohttp", "json+gzip"): AsyncConnectClient(proxy.url, session, options=json_gzip),
        ("http1", "proto"): AsyncConnectClient(proxy.url, http1),
        ("http1", "json+gzip"): AsyncConnectClient(proxy.url, http1, options=json_gzip),
    }
    try:
        start_snap = await snapshot(server, proxy)
        warm = Outcomes()
        t0 = time.monotonic()
        await asyncio.wait_for(
            run_load(clients, warmup_plans, args.concurrency, warm), args.max_seconds
        )
        print(f"warm-up: {warm.total()} RPCs in {time.monotonic() - t0:.1f} s", flush=True)
        base, took = await settle(server, proxy, args.settle, None, margins)
        print(f"baseline: idle after {took:.1f} s", flush=True)

        outcomes = Outcomes()
        t0 = time.monotonic()
        remaining = args.max_seconds - (t0 - started)
        try:
            await asyncio.wait_for(run_load(clients, plans, args.concurrency, outcomes), remaining)
        except asyncio.TimeoutError:
            failures.append(f"the run exceeded --max-seconds {args.max_seconds}")
        duration = time.monotonic() - t0
        print(
            f"load: {outcomes.total()} RPCs in {duration:.1f} s "
            f"({outcomes.total() / duration:.0f} RPC/s)",
            flush=True,
        )
        final, took = await settle(server, proxy, args.settle, base, margins)
        print(f"final: measured after {took:.1f} s", flush=True)
    finally:
        for client in clients.values():
            await client.close()
        await session.close()
        await asyncio.sleep(0.25)  # aiohttp closes its transports on the next loop turns
    after_close = measure_self()
    print()
    print_table(
        "outcomes by transport (all kinds and actions)",
        outcome_table(outcomes.by_transport, list(TRANSPORTS)),
    )
    print()
    print_table("outcomes by kind", outcome_table(outcomes.by_kind, list(KINDS)))
    print()
    print_table("outcomes by action", outcome_table(outcomes.by_action, list(ACTIONS)))
    print()
    rows, resource_failures = resource_rows(base, final, margins)
    failures += resource_failures
    print_table(
        f"resources (limits: fds +{margins.fds}, tasks +{margins.tasks}, RSS +max("
        f"{margins.rss_fraction:.0%}, {margins.rss_bytes // 2**20} MiB), gc objects +max("
        f"{margins.objects_fraction:.0%}, {margins.objects})); before warm-up: "
        + ", ".join(
            f"{p} {start_snap[p]['fds']} fds/{fmt('rss', start_snap[p]['rss'])}" for p in PROCESSES
        ),
        rows,
    )
    print(
        f"  client after closing its session and transport: {after_close['fds']} fds, "
        f"{after_close['tasks']} tasks (before warm-up: {start_snap['client']['fds']} fds, "
        f"{start_snap['client']['tasks']} tasks)"
    )
    if after_close["fds"] > start_snap["client"]["fds"]:
        failures.append("client fds after closing everything exceed the count before warm-up")
    if after_close["tasks"] > start_snap["client"]["tasks"]:
        failures.append("client tasks after closing everything exceed the count before warm-up")
    print()
    handlers = final["server"]["handlers"]
    print(
        "server handlers: "
        + ", ".join(
            f"{k} {handlers.get(k, 0)}"
            for k in ("started", "ok", "error", "crashed", "cancelled", "client_gone")
        )
        + f", in flight {final['server']['in_flight']}"
    )
    counts = final["proxy"]["proxy"]
    print(
        f"proxy: {counts.get('accepted', 0)} connections, killed "
        f"{counts.get('killed_lifetime', 0)} at the end of their lifetime and "
        f"{counts.get('killed_in_flight', 0)} mid-transfer, open now {final['proxy']['open_connections']}"
    )

    if not quiet(final):
        failures.append("still busy at the end: handlers in flight or proxied connections open")
    for what, n in sorted(outcomes.problems.items()):
        failures.append(f"{n} call(s) {what}")
    for p, errors in (("server", final["server"]), ("proxy", final["proxy"])):
        if errors["errors"]:
            failures.append(f"{p}: {errors['errors']} error(s) logged: {errors['first_errors']}")
    if client_errors.count:
        failures.append(f"client: {client_errors.count} loop error(s): {client_errors.first}")
    if resource_warnings:
        failures.append(
            f"client: {len(resource_warnings)} ResourceWarning(s): {resource_warnings[:3]}"
        )
    for child in (server, proxy):
        status = await child.stop()
        if status != 0:
            failures.append(f"{child.name} exited with {status}: {child.stderr_text()[-2000:]}")
    other = {k: v for k, v in handlers.items() if k.startswith("crashed:")}
    for what, n in sorted(other.items()):
        print(f"  server handlers that raised on their own: {n} x {what.removeprefix('crashed:')}")
    print(
        f"logged errors: server {final['server']['errors']} (and "
        f"{final['server']['expected_errors']} for the crashes asked for), proxy "
        f"{final['proxy']['errors']}, client loop {client_errors.count} (and "
        f"{client_errors.aiohttp_writer} from aiohttp's request-body writer task); client "
        f"ResourceWarnings {len(resource_warnings)}"
    )
    samples = sorted(
        (k, v)
        for k, v in outcomes.samples.items()
        if args.verbose or k[0] in ("clean", "request_raises") or k[1] in ("unknown",)
    )
    if samples:
        print()
        print(
            "error messages (first per action, code, transport and kind"
            + (
                ")"
                if args.verbose
                else "; clean calls, request streams that raised, unknown; --verbose for all)"
            )
        )
        for (action, code, transport, kind), message in samples:
            print(f"  {action:>14} {code:>19} {transport:>7} {kind:>13}: {message}")
    if outcomes.first_problems:
        print("first problems:")
        for line in outcomes.first_problems:
            print(f"  {line}")
    total = time.monotonic() - started
    print()
    if failures:
        print(f"soak: FAIL after {total:.0f} s")
        for f in failures:
            print(f"  - {f}")
        return 1
    print(f"soak: PASS ({outcomes.total()} RPCs, {total:.0f} s in all)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rpcs", type=int, default=100_000, help="RPCs in the measured run")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    parser.add_argument("--quick", action="store_true", help="short run for CI: --rpcs 2000")
    parser.add_argument(
        "--warmup", type=int, help="RPCs before the baseline (default: 2%%, at least 500)"
    )
    parser.add_argument("--concurrency", type=int, default=48, help="RPCs in flight")
    parser.add_argument(
        "--keep-alive", type=float, default=1.0, help="server idle keep-alive timeout, s"
    )
    parser.add_argument(
        "--lifetime", type=float, default=5.0, help="mean proxied connection lifetime, s"
    )
    parser.add_argument(
        "--chunk-kill",
        type=float,
        default=0.002,
        help="chance a forwarded chunk kills its connection",
    )
    parser.add_argument("--settle", type=float, default=20.0, help="most seconds to wait for idle")
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="give up after this")
    parser.add_argument("-v", "--verbose", action="store_true", help="more error samples")
    Margins.add_arguments(parser)
    # Internal: the child processes.
    parser.add_argument(
        "--role", choices=("driver", "server", "proxy"), default="driver", help=argparse.SUPPRESS
    )
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not os.path.isdir("/proc/self/fd"):
        print("soak: needs Linux /proc to measure processes", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format=f"soak {args.role}: %(name)s: %(message)s")
    if args.role == "server":
        asyncio.run(run_server(args.keep_alive))
        return 0
    if args.role == "proxy":
        asyncio.run(run_proxy(args.upstream, args.seed, args.lifetime, args.chunk_kill))
        return 0
    if args.quick:
        args.rpcs = 2000
    if args.warmup is None:
        args.warmup = max(500, args.rpcs // 50)
    try:
        return asyncio.run(drive(args))
    except (RuntimeError, OSError, asyncio.TimeoutError) as exc:
        print(f"soak: harness error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
