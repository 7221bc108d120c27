"""Blocking HTTP/1.1 clients on sequential small round-trips: ours against the usual ones.

Starts a tiny ASGI app under uvicorn (httptools, one process of its own) on 127.0.0.1 and
sends it sequential ``POST``s of a 16-byte body, answered with a 64-byte body, from each
client in turn: ``SyncHTTP1Transport`` (with and without a deadline, which turns every
socket call into a poll and a call), urllib3's ``PoolManager``, ``httpx.Client`` and
pyqwest's ``SyncClient`` (what the official connect-python sync client sends with). Those
not installed are skipped; run with them available but outside the project's
dependencies::

    uv run --with urllib3 --with httpx python benchmarks/sync_transports.py

Each round runs every client once, in an order that rotates between rounds, after a
warm-up on its own connection; a run is up to ``--calls`` round-trips or ``--seconds``.
Client CPU is the process's CPU time (all threads: pyqwest works on a Rust thread) over the
measured phase. The report gives medians over the rounds, with min-max, and writes
``benchmarks/results/sync-transports.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

REQUEST = b"r" * 16
RESPONSE = b"x" * 64
RESULTS = Path(__file__).resolve().parent / "results" / "sync-transports.md"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


async def app(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """Reads the request body, answers ``RESPONSE``."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    headers = [(b"content-type", b"application/proto"), (b"content-length", b"64")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": RESPONSE})


def serve() -> None:
    """The server process: prints its port, then serves until killed."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, http="httptools", log_level="warning", lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


# --- the clients: each a factory of (one round-trip, close) --------------------------------

Call = Callable[[], bytes]
Client = tuple[Call, Callable[[], None]]


def ours(url: str, timeout: float | None) -> Client:
    from multidict import CIMultiDict

    from connectrpc._transports.base import HTTPRequest
    from connectrpc._transports.sync_http1 import SyncHTTP1Transport

    transport = SyncHTTP1Transport()
    headers = CIMultiDict({"content-type": "application/proto"})

    def call() -> bytes:
        response = transport.send(HTTPRequest("POST", url, headers, REQUEST, timeout))
        body = b""
        while chunk := response.read():
            body += chunk
        response.close(abort=False)
        return body

    return call, transport.close


def urllib3_client(url: str) -> Client:
    import urllib3  # type: ignore[import-not-found, unused-ignore]

    pool = urllib3.PoolManager(maxsize=1)
    headers = {"content-type": "application/proto"}

    def call() -> bytes:
        return bytes(pool.request("POST", url, body=REQUEST, headers=headers, retries=False).data)

    return call, pool.clear


def httpx_client(url: str) -> Client:
    import httpx  # type: ignore[import-not-found, unused-ignore]

    client = httpx.Client()
    headers = {"content-type": "application/proto"}

    def call() -> bytes:
        return bytes(client.post(url, content=REQUEST, headers=headers).content)

    return call, client.close


def pyqwest_client(url: str) -> Client:
    import pyqwest

    client = pyqwest.SyncClient()
    headers = {"content-type": "application/proto"}

    def call() -> bytes:
        return client.post(url, headers, REQUEST).content

    return call, lambda: None


FACTORIES: dict[str, Callable[[str], Client]] = {
    "ours (SyncHTTP1Transport)": lambda url: ours(url, None),
    "ours, with a deadline": lambda url: ours(url, 30.0),
    "urllib3 PoolManager": urllib3_client,
    "httpx.Client": httpx_client,
    "pyqwest SyncClient": pyqwest_client,
}


def available(name: str) -> bool:
    module = {"urllib3": "urllib3", "httpx": "httpx", "pyqwest": "pyqwest"}.get(name.split()[0])
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def measure(
    factory: Callable[[str], Client], url: str, calls: int, seconds: float
) -> tuple[float, float]:
    """Round-trips per second and client CPU microseconds per round-trip."""
    call, close = factory(url)
    try:
        for _ in range(200):
            if call() != RESPONSE:
                raise AssertionError("wrong response body")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        give_up = wall0 + seconds
        done = 0
        while done < calls:
            for _ in range(100):
                call()
            done += 100
            if time.perf_counter() > give_up:
                break
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        close()
    return done / wall, cpu / done * 1e6


def report(rows: dict[str, list[tuple[float, float]]], rounds: int) -> str:
    base = statistics.median(r for r, _ in rows["ours (SyncHTTP1Transport)"])
    base_cpu = statistics.median(c for _, c in rows["ours (SyncHTTP1Transport)"])
    lines = [
        "# Blocking HTTP/1.1 clients: sequential round-trips",
        "",
        f"`benchmarks/sync_transports.py`: {rounds} rounds, medians (min-max); a 16-byte "
        "`POST` answered with 64 bytes by uvicorn (httptools) on 127.0.0.1, one connection "
        f"kept alive. Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        "| client | round-trips/s | client CPU µs/call | ours is faster by | ours uses CPU |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, results in rows.items():
        rates = [r for r, _ in results]
        cpus = [c for _, c in results]
        rate, cpu = statistics.median(rates), statistics.median(cpus)
        lines.append(
            f"| {name} | {rate:,.0f} ({min(rates):,.0f}-{max(rates):,.0f}) "
            f"| {cpu:.1f} ({min(cpus):.1f}-{max(cpus):.1f}) "
            f"| {base / rate:.2f}x | {base_cpu / cpu:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--no-write", action="store_true", help="do not write the results file")
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    names = [name for name in FACTORIES if available(name)]
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline())}/bench"
        rows: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
        for round_ in range(args.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                rate, cpu = measure(FACTORIES[name], url, args.calls, args.seconds)
                rows[name].append((rate, cpu))
                print(f"round {round_ + 1}: {name}: {rate:,.0f}/s, {cpu:.1f} µs CPU/call")
    finally:
        server.terminate()
        server.wait()
    text = report(rows, args.rounds)
    print(text)
    if not args.no_write:
        RESULTS.write_text(text)


if __name__ == "__main__":
    main()
