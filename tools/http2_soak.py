"""HTTP/2 soak: one ``HTTP2Transport``, many calls, then check that resources come back.

Usage::

    uv run python tools/http2_soak.py [--burst N] [--calls N] [--seed S] [--quick]

The server is a child process (this script, ``--role server``): the Eliza example's ASGI app
(``examples/eliza_server.py``'s ``asgi_app``) under hypercorn with
``connectrpc.hypercorn.patch_hypercorn_h2()``, on 127.0.0.1, spoken to over h2c. Its replies
are reproducible (Eliza's seed 1966), so every successful call is checked against
``eliza_engine``; it pauses between the sentences of an introduction, so deadlines and
cancellations land mid-stream. The client is this process: one generated Eliza client per
protocol (gRPC, Connect, gRPC-Web; ``--protocols``), picked per call, all sharing one
``HTTP2Transport``.

1. **burst**: ``--burst`` calls (1,000) started at once, every RPC kind. The streaming calls
   hold their streams open once their first message has passed, until all of them have got
   that far, so that hundreds of streams really are open together. The transport must carry
   them on at most ``ceil(burst / 100) + 1`` connections (hypercorn allows 100 streams per
   connection), and never more than its ``max_connections_per_origin`` (10).
2. **chaos**: ``--calls`` calls (20,000), ``--concurrency`` in flight, each with one action
   drawn from ``--seed``: a clean call, a deadline of 1-50 ms, a cancellation of the awaiting
   task after 0-30 ms, or an early close of the response stream (Introduce, Converse).

hypercorn recycles a connection after ``keep_alive_max_requests`` requests (1,000 by
default) with a GOAWAY, after which its h2 connection refuses every frame, so it drops the
calls still in flight on it (h2 moves to CLOSED on sending GOAWAY, and hypercorn closes the
connection on the ProtocolError). The server here sets it to ``--server-max-requests``
(default: never) so that the soak measures the client; ``--server-max-requests 1000``
shows hypercorn's behaviour (calls failing with ``unavailable``).

Resources are measured after ``gc.collect()``: in this process open file descriptors,
asyncio tasks, RSS and gc-tracked objects (``tools/soak.py``'s ``measure_self``); in the
server, open file descriptors and RSS (from ``/proc/PID``). The baseline is taken after a
warm-up, once the transport has closed its idle connections (``--idle-timeout``); the final
figures (and figures after the burst) once it has done so again and the margins hold, or
after ``--settle`` seconds. The margins are ``tools/soak.py``'s: fds +5, tasks +0, RSS
+max(25 %, 30 MiB), gc objects +max(2 %, 10,000).

The run fails if a call hangs (no outcome after 120 s), a successful call returns the wrong
replies, a call fails other than as its action allows (a deadline: ``deadline_exceeded``; a
cancellation: ``CancelledError``; an early close: ``canceled``), the burst uses too many
connections, the transport still has streams or connections once idle, the event loop
reports an unhandled error, a ``ResourceWarning`` is issued, the server logs anything or
exits uncleanly, or a resource is over its margin. It prints the outcome counts, throughput,
connections and the resource table. Exit status: 0 pass, 1 a check failed, 2 the harness
failed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import logging
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TextIO

SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parents[1]
for _path in (REPO / "examples" / "gen", REPO / "examples"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from eliza.v1 import eliza_pb2  # noqa: E402 - needs the path above
from eliza.v1.eliza_connect import AsyncElizaServiceClient  # noqa: E402
from eliza_engine import Eliza, introduction  # noqa: E402
from eliza_server import ElizaService, asgi_app, bind_socket, make_config, url_of  # noqa: E402
from hypercorn.asyncio import serve  # noqa: E402
from soak import (  # noqa: E402 - tools/soak.py, next to this script
    Margins,
    fmt,
    fmt_delta,
    measure_self,
    print_table,
    stop_on_stdin_eof,
    watch_errors,
)

from connectrpc.client import BidiStream, ClientOptions, HTTP2Transport  # noqa: E402
from connectrpc.errors import Code, ConnectError  # noqa: E402
from connectrpc.hypercorn import patch_hypercorn_h2  # noqa: E402

HOST = "127.0.0.1"
SEED = 1966  # Eliza's seed on the server (her replies), not the plan's
PAUSE = 0.005  # seconds the server pauses between the sentences of an introduction
SERVER_MAX_STREAMS = 100  # hypercorn's h2_max_concurrent_streams
MAX_CONNECTIONS = 10  # the transport's max_connections_per_origin (its default)
CALL_TIMEOUT = 60.0  # the deadline of calls meant to succeed; also the watchdog
HOLD_TIMEOUT = 60.0  # how long a burst call holds its stream open, at most
PROTOCOLS = ("grpc", "connect", "grpc-web")
KINDS = ("say", "introduce", "pontificate", "converse")
SENTENCES = (
    "I am sad",
    "I need a holiday",
    "My mother does not listen to me",
    "Do you remember my dream?",
    "Perhaps you are right",
    "Everybody laughs at me",
    "I feel like a computer",
    "Why do you ask?",
)
NAMES = ("Ada", "Grace", "Alan", "Barbara")
# Actions and their weights in the chaos phase.
ACTIONS = {"clean": 40, "deadline": 25, "cancel": 20, "close_early": 15}


# --- what Eliza says (computed per call: a cache would grow the gc-tracked objects) ---------


def say_reply(sentence: str) -> str:
    return Eliza(SEED).reply(sentence)


def monologue_reply(sentences: tuple[str, ...]) -> str:
    return Eliza(SEED).reply_to_monologue(list(sentences))


def conversation(sentences: tuple[str, ...]) -> tuple[str, ...]:
    eliza = Eliza(SEED)
    return tuple(eliza.reply(sentence) for sentence in sentences)


# --- the plan of a call -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Plan:
    kind: str
    protocol: str
    action: str
    sentences: tuple[str, ...]  # Say: one; Pontificate and Converse: several
    name: str  # Introduce
    timeout: float  # the call's deadline
    cancel_after: float  # seconds before the awaiting task is cancelled (cancel)
    stop_after: int  # messages taken before leaving the stream (close_early)
    gap: float  # seconds between request messages

    @classmethod
    def random(cls, rng: random.Random, protocols: tuple[str, ...], *, clean: bool = False) -> Plan:
        kind = rng.choice(KINDS)
        action = "clean" if clean else rng.choices(list(ACTIONS), list(ACTIONS.values()))[0]
        if action == "close_early" and kind in ("say", "pontificate"):
            action = "cancel"  # one response message: nothing to close early
        count = 1 if kind == "say" else rng.randrange(1, 5)
        return cls(
            kind=kind,
            protocol=rng.choice(protocols),
            action=action,
            sentences=tuple(rng.choice(SENTENCES) for _ in range(count)),
            name=rng.choice(NAMES),
            timeout=rng.uniform(0.001, 0.05) if action == "deadline" else CALL_TIMEOUT,
            cancel_after=rng.uniform(0.0, 0.03),
            stop_after=rng.randrange(1, 4),
            gap=rng.uniform(0.0, 0.005) if action != "clean" else 0.0,
        )


def plan_stream(rng: random.Random, protocols: tuple[str, ...], n: int) -> Iterator[Plan]:
    for _ in range(n):
        yield Plan.random(rng, protocols)


class Outcomes:
    def __init__(self) -> None:
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.problems: list[str] = []
        self.problem_count = 0
        self.problem_kinds: collections.Counter[str] = collections.Counter()

    def add(self, plan: Plan, outcome: str) -> None:
        self.counts[plan.action, outcome] += 1

    def problem(self, plan: Plan, what: str) -> None:
        self.problem_count += 1
        self.problem_kinds[f"{plan.kind}: {what[:60]}"] += 1
        if len(self.problems) < 10:
            self.problems.append(f"{what} ({plan.kind} over {plan.protocol}, {plan.action})")

    def total(self) -> int:
        return sum(self.counts.values())


# --- one call ---------------------------------------------------------------------------------

Hold = Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


class Call:
    """One call as planned. ``hold`` is awaited once the first message has passed (burst)."""

    def __init__(self, client: AsyncElizaServiceClient, plan: Plan, outcomes: Outcomes) -> None:
        self.client = client
        self.plan = plan
        self.outcomes = outcomes
        self.early = plan.action == "close_early"

    def _ended(self, got: list[str], expected: list[str], error: ConnectError | None) -> str:
        """The outcome of a call that received ``got`` and ended with ``error``."""
        if error is None:
            if got != expected:
                self.outcomes.problem(self.plan, f"wrong: {got!r} instead of {expected!r}")
            return "ok"
        if got != expected[: len(got)]:
            self.outcomes.problem(self.plan, f"wrong: {got!r} before {error.code.value}")
        allowed = Code.DEADLINE_EXCEEDED if self.plan.action == "deadline" else None
        if error.code is not allowed:
            self.outcomes.problem(self.plan, f"unexpected: {error}"[:300])
        return error.code.value

    async def run(self, hold: Hold = _nothing) -> str:
        plan = self.plan
        if plan.kind == "say":
            said = await self.client.call_say(
                eliza_pb2.SayRequest(sentence=plan.sentences[0]), timeout_seconds=plan.timeout
            )
            message = said.message()
            got = [] if message is None else [message.sentence]
            return self._ended(got, [say_reply(plan.sentences[0])], said.error())
        if plan.kind == "pontificate":
            heard = await self.client.call_pontificate(
                self._monologue(hold), timeout_seconds=plan.timeout
            )
            reply = heard.message()
            got = [] if reply is None else [reply.sentence]
            return self._ended(got, [monologue_reply(plan.sentences)], heard.error())
        if plan.kind == "introduce":
            return await self._introduce(hold)
        return await self._converse(hold)

    async def _monologue(self, hold: Hold) -> AsyncIterator[eliza_pb2.PontificateRequest]:
        for i, sentence in enumerate(self.plan.sentences):
            if i:
                await asyncio.sleep(self.plan.gap)
            yield eliza_pb2.PontificateRequest(sentence=sentence)
            if i == 0:
                await hold()

    async def _introduce(self, hold: Hold) -> str:
        plan = self.plan
        got: list[str] = []
        async with await self.client.call_introduce(
            eliza_pb2.IntroduceRequest(name=plan.name), timeout_seconds=plan.timeout
        ) as output:
            async for reply in output:
                got.append(reply.sentence)
                if len(got) == 1:
                    await hold()
                if self.early and len(got) >= plan.stop_after:
                    break
        expected = introduction(plan.name)
        if self.early and len(got) >= plan.stop_after:
            error = output.error()
            if error is None or error.code is not Code.CANCELED or got != expected[: len(got)]:
                self.outcomes.problem(plan, f"wrong: closed early with {got!r}, {error!r}")
            return "closed early"
        return self._ended(got, expected, output.error())

    async def _converse(self, hold: Hold) -> str:
        plan = self.plan
        got: list[str] = []
        async with BidiStream.open(self.client.call_converse, timeout_seconds=plan.timeout) as bidi:
            try:
                for i, sentence in enumerate(plan.sentences):
                    if i:
                        await asyncio.sleep(plan.gap)
                    await bidi.send(eliza_pb2.ConverseRequest(sentence=sentence))
                    reply = await bidi.receive()
                    if reply is None:
                        break
                    got.append(reply.sentence)
                    if i == 0:
                        await hold()
                    if self.early and len(got) >= plan.stop_after:
                        return "closed early"  # leaving `async with` cancels the call
                else:
                    bidi.close_send()
            except ConnectError:
                pass  # send() after the call ended: receive() and error() tell how
            while (reply := await bidi.receive()) is not None:
                self.outcomes.problem(plan, f"wrong: an extra reply {reply.sentence!r}")
        return self._ended(got, list(conversation(plan.sentences)), bidi.error())


async def guarded_call(call: Call, hold: Hold = _nothing) -> str:
    """Run ``call`` with its chaos (a cancellation) and a watchdog against hangs."""
    plan, outcomes = call.plan, call.outcomes
    cancel = plan.action == "cancel"
    task = asyncio.ensure_future(call.run(hold))
    try:
        if cancel:
            done, _ = await asyncio.wait({task}, timeout=plan.cancel_after)
            if not done:
                task.cancel()
        done, _ = await asyncio.wait({task}, timeout=CALL_TIMEOUT + HOLD_TIMEOUT)
    finally:
        if not task.done():  # the watchdog fired, or this worker is being cancelled
            task.cancel()
    if not done:
        outcome = "hung"
        outcomes.problem(plan, "hung: no outcome in time")
        await asyncio.wait({task}, timeout=5)
    elif task.cancelled():
        outcome = "cancelled"
        if not cancel:
            outcomes.problem(plan, "unexpected: CancelledError although nobody cancelled")
    elif (exc := task.exception()) is not None:
        outcome = f"raised {type(exc).__name__}"
        outcomes.problem(plan, f"raised: {type(exc).__name__}: {exc}"[:300])
    else:
        outcome = task.result()
    outcomes.add(plan, outcome)
    return outcome


# --- the phases -----------------------------------------------------------------------------


class Peaks:
    """Samples the transport's open streams and connections while a phase runs."""

    def __init__(self, transport: HTTP2Transport) -> None:
        self.transport = transport
        self.streams = 0
        self.connections = 0

    def sample(self) -> None:
        self.streams = max(self.streams, self.transport.open_streams())
        self.connections = max(self.connections, self.transport.open_connections())

    @contextlib.asynccontextmanager
    async def sampling(self) -> AsyncIterator[Peaks]:
        async def sampler() -> None:
            while True:
                self.sample()
                await asyncio.sleep(0.005)

        task = asyncio.ensure_future(sampler())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.sample()


async def burst(
    transport: HTTP2Transport,
    clients: dict[str, AsyncElizaServiceClient],
    plans: list[Plan],
    outcomes: Outcomes,
) -> int:
    """Start every call at once; streaming calls hold until all of them are in. Returns the
    number of streams open at that moment."""
    holders = sum(plan.kind != "say" for plan in plans)
    arrived = 0
    all_in = asyncio.Event()
    at_barrier: list[int] = []

    async def hold() -> None:
        nonlocal arrived
        arrived += 1
        if arrived == holders:
            at_barrier.append(transport.open_streams())
            all_in.set()
        try:
            await asyncio.wait_for(all_in.wait(), HOLD_TIMEOUT)
        except asyncio.TimeoutError:
            raise RuntimeError(
                f"burst: only {arrived} of {holders} streaming calls got their first message "
                f"within {HOLD_TIMEOUT} s"
            ) from None

    await asyncio.gather(
        *(guarded_call(Call(clients[plan.protocol], plan, outcomes), hold) for plan in plans)
    )
    return at_barrier[0] if at_barrier else 0


async def run_load(
    clients: dict[str, AsyncElizaServiceClient],
    plans: Iterator[Plan],
    concurrency: int,
    outcomes: Outcomes,
) -> None:
    async def worker() -> None:
        for plan in plans:  # shared by the workers: each plan runs once
            await guarded_call(Call(clients[plan.protocol], plan, outcomes))

    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    try:
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


# --- the server -------------------------------------------------------------------------------


async def run_server(max_requests: int) -> None:
    """The server process: Eliza's ASGI app under hypercorn, h2c on a free port."""
    patch_hypercorn_h2()
    sock = bind_socket(HOST, 0)
    url = url_of(sock, False)
    config = make_config(sock)
    config.keep_alive_max_requests = max_requests
    app = asgi_app(ElizaService(SEED, pause=PAUSE))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stop_on_stdin_eof(loop, stop)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print(f"listening on {url}", flush=True)
    await serve(app, config, shutdown_trigger=stop.wait, mode="asgi")


class Server:
    """The server process (this script, ``--role server``), measured through ``/proc``."""

    def __init__(self, proc: asyncio.subprocess.Process, stderr: TextIO, url: str) -> None:
        self.proc = proc
        self.stderr = stderr
        self.url = url

    @classmethod
    async def start(cls, max_requests: int) -> Server:
        stderr = tempfile.TemporaryFile("w+", prefix="http2-soak-server-")  # noqa: SIM115
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            "--role",
            "server",
            "--server-max-requests",
            str(max_requests),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        assert proc.stdout is not None
        try:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        except asyncio.TimeoutError:
            line = ""
        server = cls(proc, stderr, line.removeprefix("listening on "))
        if not line.startswith("listening on "):
            await server.stop()
            raise RuntimeError(f"the server did not start: {line!r}\n{server.log()}")
        return server

    def measure(self) -> dict[str, int]:
        pid = self.proc.pid
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            rss = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
        return {"fds": len(os.listdir(f"/proc/{pid}/fd")), "rss": rss}

    def log(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()

    async def stop(self) -> int:
        """Close its stdin (its cue to stop gracefully); kill it if it hangs."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        if self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        assert self.proc.returncode is not None
        return self.proc.returncode


# --- measuring and reporting --------------------------------------------------------------------

METRICS = {"client": ("fds", "tasks", "rss", "objects"), "server": ("fds", "rss")}
Snapshot = dict[str, dict[str, int]]


def snapshot(server: Server) -> Snapshot:
    return {"client": measure_self(), "server": server.measure()}


def within(snap: Snapshot, base: Snapshot, margins: Margins) -> bool:
    return all(
        snap[p][m] <= margins.limit(m, base[p][m])
        for p, metrics in METRICS.items()
        for m in metrics
    )


async def settle(
    transport: HTTP2Transport,
    server: Server,
    seconds: float,
    base: Snapshot | None,
    margins: Margins,
) -> tuple[Snapshot, float]:
    """Poll until the transport is idle (no stream, no connection) and, with a baseline, the
    margins hold; without one, until fds and tasks stop changing. Gives up after ``seconds``."""
    start = time.monotonic()
    previous: Snapshot | None = None
    while True:
        await asyncio.sleep(0.25)
        snap = snapshot(server)
        elapsed = time.monotonic() - start
        if transport.open_streams() == 0 and transport.open_connections() == 0:
            if base is not None and within(snap, base, margins):
                return snap, elapsed
            if base is None and previous is not None:
                keys = [("client", "fds"), ("client", "tasks"), ("server", "fds")]
                if all(snap[p][m] == previous[p][m] for p, m in keys):
                    return snap, elapsed
        if elapsed > seconds:
            return snap, elapsed
        previous = snap


def resource_rows(
    base: Snapshot, after_burst: Snapshot, final: Snapshot, margins: Margins
) -> tuple[list[list[str]], list[str]]:
    """The resource table, and what is over its limit (after the burst or at the end)."""
    rows = [["process", "metric", "baseline", "after burst", "final", "delta", "limit", ""]]
    failures = []
    for p, metrics in METRICS.items():
        for m in metrics:
            b, mid, f = base[p][m], after_burst[p][m], final[p][m]
            limit = margins.limit(m, b)
            for when, value in (("after the burst", mid), ("at the end", f)):
                if value > limit:
                    failures.append(
                        f"{p} {m} {when}: {fmt(m, b)} -> {fmt(m, value)} (limit {fmt(m, limit)})"
                    )
            ok = mid <= limit and f <= limit
            row = [p, m, fmt(m, b), fmt(m, mid), fmt(m, f), fmt_delta(m, f - b), fmt(m, limit)]
            rows.append([*row, "ok" if ok else "FAIL"])
    return rows, failures


def outcome_rows(outcomes: Outcomes) -> list[list[str]]:
    actions = [a for a in ACTIONS if any(k[0] == a for k in outcomes.counts)]
    names = sorted({o for _, o in outcomes.counts}, key=lambda o: (o != "ok", o))
    rows = [["outcome", *actions, "total"]]
    for name in names:
        cells = [outcomes.counts[a, name] for a in actions]
        rows.append([name, *map(str, cells), str(sum(cells))])
    totals = [sum(v for (a, _), v in outcomes.counts.items() if a == action) for action in actions]
    rows.append(["total", *map(str, totals), str(sum(totals))])
    return rows


# --- the driver -------------------------------------------------------------------------------


async def drive(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    loop_errors, resource_warnings = watch_errors(loop)
    margins = Margins.from_args(args)
    server = await Server.start(args.server_max_requests)
    transport = HTTP2Transport(
        max_connections_per_origin=MAX_CONNECTIONS, idle_timeout=args.idle_timeout
    )
    clients = {
        protocol: AsyncElizaServiceClient(
            server.url, transport, options=ClientOptions(protocol=protocol)
        )
        for protocol in args.protocols
    }
    failures: list[str] = []
    logged = ""  # what the server logged before it was asked to stop
    try:
        print(
            f"http2 soak: burst of {args.burst}, then {args.calls} calls ({args.concurrency} in "
            f"flight) after {args.warmup} warm-up, seed {args.seed}, over "
            f"{'/'.join(args.protocols)}; one HTTP2Transport; "
            f"server pid {server.proc.pid} at {server.url}",
            flush=True,
        )
        rng = random.Random(args.seed)
        warm = Outcomes()
        await run_load(
            clients, plan_stream(rng, args.protocols, args.warmup), args.concurrency, warm
        )
        base, took = await settle(transport, server, args.settle, None, margins)
        print(f"warm-up: {warm.total()} calls; baseline: idle after {took:.1f} s", flush=True)

        # 1. The burst.
        outcomes = Outcomes()
        plans = [Plan.random(rng, args.protocols, clean=True) for _ in range(args.burst)]
        peaks = Peaks(transport)
        t0 = time.monotonic()
        async with peaks.sampling():
            at_barrier = await burst(transport, clients, plans, outcomes)
        took = time.monotonic() - t0
        del plans  # not to be counted as gc-tracked objects left over
        # Every call wants a stream at once: ideally ceil(N / 100) connections; one spare.
        bound = min(math.ceil(args.burst / SERVER_MAX_STREAMS) + 1, MAX_CONNECTIONS)
        print(
            f"burst: {outcomes.total()} calls in {took:.2f} s; {at_barrier} streams open at "
            f"once (peak {peaks.streams}); connections: peak {peaks.connections} "
            f"(bound {bound})",
            flush=True,
        )
        if peaks.connections > bound:
            failures.append(f"the burst used {peaks.connections} connections (bound {bound})")
        if outcomes.counts["clean", "ok"] != args.burst:
            failures.append(f"the burst: {outcomes.counts['clean', 'ok']} of {args.burst} ok")
        after_burst, _ = await settle(transport, server, args.settle, base, margins)

        # 2. The chaos.
        chaos = Outcomes()
        peaks = Peaks(transport)
        t0 = time.monotonic()
        async with peaks.sampling():
            await run_load(
                clients, plan_stream(rng, args.protocols, args.calls), args.concurrency, chaos
            )
        took = time.monotonic() - t0
        print(
            f"chaos: {chaos.total()} calls in {took:.1f} s ({chaos.total() / took:.0f}/s); "
            f"streams: peak {peaks.streams}; connections: peak {peaks.connections}",
            flush=True,
        )
        print_table("outcomes by action", outcome_rows(chaos))
        streams_left = transport.open_streams()
        final, took = await settle(transport, server, args.settle, base, margins)
        print(f"final: idle after {took:.1f} s", flush=True)

        for name, result in (("burst", outcomes), ("chaos", chaos)):
            if result.problem_count:
                failures.append(f"{name}: {result.problem_count} calls misbehaved")
                failures.extend(f"  {n} x {k}" for k, n in result.problem_kinds.most_common(10))
                failures.append("  the first ones:")
                failures.extend(f"  {p}" for p in result.problems)
        if streams_left:
            failures.append(f"{streams_left} streams still open once every call had ended")
        if transport.open_connections():
            failures.append(f"{transport.open_connections()} connections still open when idle")
        rows, over = resource_rows(base, after_burst, final, margins)
        print_table("resources (client: this process; server: Eliza under hypercorn)", rows)
        failures.extend(over)
        print(
            f"tasks left: {final['client']['tasks']} (baseline {base['client']['tasks']}); "
            f"connections left: {transport.open_connections()}",
            flush=True,
        )
        logged = server.log()
        if logged.strip():
            failures.append(f"the server logged during the run:\n{logged[:2000]}")
    finally:
        await transport.aclose()
        code = await server.stop()
        server_log = server.log()
        server.stderr.close()
    if code != 0:
        failures.append(f"the server exited with {code}")
    if server_log[len(logged) :].strip():
        failures.append(f"the server logged while stopping:\n{server_log[len(logged) :][:2000]}")
    if loop_errors.count:
        failures.append(f"{loop_errors.count} unhandled errors: {loop_errors.first}")
    if resource_warnings:
        failures.append(f"{len(resource_warnings)} ResourceWarnings: {resource_warnings[:3]}")
    if failures:
        print("http2 soak: FAIL\n  " + "\n  ".join(failures), flush=True)
        return 1
    print(f"http2 soak: PASS ({args.burst} + {args.calls} calls)", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--burst", type=int, default=1000, help="calls started at once")
    parser.add_argument("--calls", type=int, default=20_000, help="calls in the chaos phase")
    parser.add_argument("--concurrency", type=int, default=100, help="chaos calls in flight")
    parser.add_argument("--warmup", type=int, default=500, help="calls before the baseline")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    parser.add_argument(
        "--protocols",
        default=",".join(PROTOCOLS),
        help="comma-separated protocols to call with (default: all three)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short smoke run: --burst 200 --calls 2000"
    )
    parser.add_argument(
        "--idle-timeout", type=float, default=1.0, help="the transport's idle_timeout, s"
    )
    parser.add_argument(
        "--server-max-requests",
        type=int,
        default=10**9,
        help="hypercorn's keep_alive_max_requests (its default, 1000, makes it send GOAWAY "
        "and then drop the calls in flight: see the module docstring)",
    )
    parser.add_argument("--settle", type=float, default=20.0, help="most seconds to wait for idle")
    Margins.add_arguments(parser)
    parser.add_argument(
        "--role", choices=("driver", "server"), default="driver", help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.role == "server":
        logging.basicConfig(level=logging.WARNING, format="http2 soak server: %(message)s")
        asyncio.run(run_server(args.server_max_requests))
        return 0
    if not os.path.isdir("/proc/self/fd"):
        print("http2 soak: needs Linux /proc to measure processes", file=sys.stderr)
        return 2
    args.protocols = tuple(args.protocols.split(","))
    if not args.protocols or not set(args.protocols) <= set(PROTOCOLS):
        parser.error(f"--protocols: choose from {', '.join(PROTOCOLS)}")
    if args.quick:
        args.burst, args.calls, args.warmup = 200, 2000, 200
    logging.basicConfig(level=logging.WARNING, format="http2 soak: %(name)s: %(message)s")
    try:
        return asyncio.run(drive(args))
    except (RuntimeError, OSError, asyncio.TimeoutError) as exc:
        print(f"http2 soak: harness error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
