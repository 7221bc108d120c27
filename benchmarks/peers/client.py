"""One Python client peer. Run by benchmarks/run.py with the peer's own interpreter:

    python client.py --impl ours|official|grpc|raw|... --url http://127.0.0.1:PORT --spec JSON

The ``*_sync`` impls are the blocking clients (ours: ``ConnectClient`` over
``SyncHTTP1Transport``; the official ``...ClientSync`` over pyqwest; grpcio's stub on
``grpc.insecure_channel``), run by the same workload loops without an event loop; their
concurrent workload runs one thread per concurrent caller, sharing one client.

Line protocol on stdout (JSON per line) and stdin, shared with the Go peer: for each workload
the client warms up, prints {"event": "ready"}, waits for a line on stdin (the orchestrator
samples the server's CPU time then), measures, and prints {"event": "result", ...} (or
"error"). It ends with {"event": "done", "versions": {...}}. Every loop is bounded by a
count and a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import sys
import time
from collections.abc import AsyncIterator
from importlib import metadata
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench.v1.bench_pb2 import DownloadRequest, Payload

PROCEDURE = "/bench.v1.BenchService/"

# The protocol channel is a private copy of stdout; stray prints go to stderr.
_out = os.fdopen(os.dup(1), "w", buffering=1)
sys.stdout = sys.stderr


def emit(event: dict[str, Any]) -> None:
    _out.write(json.dumps(event) + "\n")
    _out.flush()


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def agen(messages: list[Payload]) -> AsyncIterator[Payload]:
    for m in messages:
        yield m


# --- adapters: unary(data), download(count, size) -> (msgs, bytes), upload(msgs) -> n ------


class Ours:
    def __init__(self, url: str) -> None:
        from ours_bindings import DOWNLOAD, UNARY, UPLOAD

        from connectrpc.client import AsyncConnectClient, ClientOptions

        self.methods = UNARY, DOWNLOAD, UPLOAD
        self.client = AsyncConnectClient(
            url, options=ClientOptions(send_compression=None, accept_compression=())
        )

    async def unary(self, data: bytes) -> None:
        await self.client.unary(self.methods[0], Payload(data=data))

    async def download(self, count: int, size: int) -> tuple[int, int]:
        n = total = 0
        async for m in self.client.server_stream(
            self.methods[1], DownloadRequest(count=count, size=size)
        ):
            n += 1
            total += len(m.data)
        return n, total

    async def upload(self, messages: list[Payload]) -> int:
        res = await self.client.client_stream(self.methods[2], agen(messages))
        return int(res.messages)

    async def aclose(self) -> None:
        await self.client.close()


class Official:
    def __init__(self, url: str) -> None:
        from bench.v1.bench_connect import BenchServiceClient

        self.client = BenchServiceClient(
            url, accept_compression=(), send_compression=None, read_max_bytes=64 << 20
        )

    async def unary(self, data: bytes) -> None:
        await self.client.unary(Payload(data=data))

    async def download(self, count: int, size: int) -> tuple[int, int]:
        n = total = 0
        async for m in self.client.download(DownloadRequest(count=count, size=size)):
            n += 1
            total += len(m.data)
        return n, total

    async def upload(self, messages: list[Payload]) -> int:
        res = await self.client.upload(agen(messages))
        return int(res.messages)

    async def aclose(self) -> None:
        await self.client.close()


class Grpc:
    def __init__(self, url: str) -> None:
        import grpc
        from bench.v1 import bench_pb2_grpc

        target = url.removeprefix("http://")
        self.channel = grpc.aio.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", 64 << 20),
                ("grpc.max_send_message_length", 64 << 20),
            ],
        )
        self.stub = bench_pb2_grpc.BenchServiceStub(self.channel)

    async def unary(self, data: bytes) -> None:
        await self.stub.Unary(Payload(data=data))

    async def download(self, count: int, size: int) -> tuple[int, int]:
        n = total = 0
        async for m in self.stub.Download(DownloadRequest(count=count, size=size)):
            n += 1
            total += len(m.data)
        return n, total

    async def upload(self, messages: list[Payload]) -> int:
        res = await self.stub.Upload(agen(messages))
        return int(res.messages)

    async def aclose(self) -> None:
        await self.channel.close()


class Raw:
    """Plain aiohttp, no RPC framework: what a hand-written request through an aiohttp
    session costs, for reference. Not a ceiling: our HTTP1Transport skips aiohttp's request
    machinery and beats it. Messages are encoded by hand; streamed responses are counted in
    bytes, not parsed."""

    def __init__(self, url: str) -> None:
        import aiohttp

        self.url = url
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        self.stream_headers = {
            "content-type": "application/connect+proto",
            "connect-protocol-version": "1",
        }
        self.unary_headers = {"content-type": "application/proto", "connect-protocol-version": "1"}

    @staticmethod
    def envelope(data: bytes) -> bytes:
        return b"\x00" + len(data).to_bytes(4, "big") + data

    async def unary(self, data: bytes) -> None:
        async with self.session.post(
            self.url + PROCEDURE + "Unary",
            data=Payload(data=data).SerializeToString(),
            headers=self.unary_headers,
        ) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
            Payload.FromString(body)

    async def download(self, count: int, size: int) -> tuple[int, int]:
        body = self.envelope(DownloadRequest(count=count, size=size).SerializeToString())
        total = 0
        async with self.session.post(
            self.url + PROCEDURE + "Download", data=body, headers=self.stream_headers
        ) as resp:
            async for chunk in resp.content.iter_any():
                total += len(chunk)
        # Each message is a 5-byte envelope around a Payload (tag, length, data).
        per = 5 + 1 + len(_varint(size)) + size
        n = min(count, max(0, total - 1) // per)
        return n, n * size

    async def upload(self, messages: list[Payload]) -> int:
        async def body() -> AsyncIterator[bytes]:
            for m in messages:
                yield self.envelope(m.SerializeToString())

        async with self.session.post(
            self.url + PROCEDURE + "Upload", data=body(), headers=self.stream_headers
        ) as resp:
            await resp.read()
        return len(messages)

    async def aclose(self) -> None:
        await self.session.close()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class OursHTTP1(Ours):
    """Our client on its own HTTP/1.1 transport instead of an aiohttp session."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        from connectrpc.client import AsyncConnectClient, ClientOptions, HTTP1Transport

        self.client = AsyncConnectClient(
            url,
            HTTP1Transport(),
            options=ClientOptions(send_compression=None, accept_compression=()),
        )


class OursGrpc(Ours):
    """Our gRPC client on HTTP2Transport: every call multiplexed on one h2c connection."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        from connectrpc.client import AsyncConnectClient, ClientOptions, HTTP2Transport

        self.client = AsyncConnectClient(
            url,
            HTTP2Transport(),
            options=ClientOptions(
                protocol="grpc",
                send_compression=None,
                accept_compression=(),
                read_max_bytes=64 << 20,
            ),
        )


# --- blocking clients: the same adapters without an event loop ------------------------------


class OursSync:
    """Our blocking client, ``ConnectClient`` over ``SyncHTTP1Transport`` (its default)."""

    def __init__(self, url: str) -> None:
        from ours_bindings import DOWNLOAD, UNARY, UPLOAD

        from connectrpc.client import ClientOptions, ConnectClient, SyncHTTP1Transport

        self.methods = UNARY, DOWNLOAD, UPLOAD
        self.client = ConnectClient(
            url,
            SyncHTTP1Transport(),
            options=ClientOptions(
                send_compression=None, accept_compression=(), read_max_bytes=64 << 20
            ),
        )

    def unary(self, data: bytes) -> None:
        self.client.unary(self.methods[0], Payload(data=data))

    def download(self, count: int, size: int) -> tuple[int, int]:
        n = total = 0
        for m in self.client.server_stream(
            self.methods[1], DownloadRequest(count=count, size=size)
        ):
            n += 1
            total += len(m.data)
        return n, total

    def upload(self, messages: list[Payload]) -> int:
        res = self.client.client_stream(self.methods[2], iter(messages))
        return int(res.messages)

    def close(self) -> None:
        self.client.close()


class OfficialSync:
    """The official blocking client (generated ``...ClientSync``, pyqwest's ``SyncClient``)."""

    def __init__(self, url: str) -> None:
        from bench.v1.bench_connect import BenchServiceClientSync

        self.client = BenchServiceClientSync(
            url, accept_compression=(), send_compression=None, read_max_bytes=64 << 20
        )

    def unary(self, data: bytes) -> None:
        self.client.unary(Payload(data=data))

    def download(self, count: int, size: int) -> tuple[int, int]:
        n = total = 0
        for m in self.client.download(DownloadRequest(count=count, size=size)):
            n += 1
            total += len(m.data)
        return n, total

    def upload(self, messages: list[Payload]) -> int:
        res = self.client.upload(iter(messages))
        return int(res.messages)

    def close(self) -> None:
        self.client.close()


class GrpcSync:
    """grpcio's blocking stub (C-core) on ``grpc.insecure_channel``: gRPC over h2c."""

    def __init__(self, url: str) -> None:
        import grpc
        from bench.v1 import bench_pb2_grpc

        self.channel = grpc.insecure_channel(
            url.removeprefix("http://"),
            options=[
                ("grpc.max_receive_message_length", 64 << 20),
                ("grpc.max_send_message_length", 64 << 20),
            ],
        )
        self.stub = bench_pb2_grpc.BenchServiceStub(self.channel)

    def unary(self, data: bytes) -> None:
        self.stub.Unary(Payload(data=data))

    def download(self, count: int, size: int) -> tuple[int, int]:
        n = total = 0
        for m in self.stub.Download(DownloadRequest(count=count, size=size)):
            n += 1
            total += len(m.data)
        return n, total

    def upload(self, messages: list[Payload]) -> int:
        res = self.stub.Upload(iter(messages))
        return int(res.messages)

    def close(self) -> None:
        self.channel.close()


SYNC_ADAPTERS = {"ours_sync": OursSync, "official_sync": OfficialSync, "grpc_sync": GrpcSync}

ADAPTERS = {
    "ours": Ours,
    "ours_http1": OursHTTP1,
    "ours_grpc": OursGrpc,
    "official": Official,
    "grpc": Grpc,
    "raw": Raw,
}

# --- workloads --------------------------------------------------------------------------


async def wait_go(name: str) -> None:
    emit({"event": "ready", "workload": name})
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not line:
        raise SystemExit("orchestrator went away")


async def run_workload(peer: Any, w: dict[str, Any]) -> dict[str, Any]:
    kind = w["kind"]
    res: dict[str, Any] = {}
    data = os.urandom(16)
    messages: list[Payload] = []
    # Warm-up: connections, code paths, allocator.
    if kind in ("unary_seq", "unary_conc"):
        for _ in range(w.get("warmup", 200)):
            await peer.unary(data)
    elif kind == "download":
        await peer.download(min(w["count"], 1000), w["size"])
    elif kind == "upload":
        messages = [Payload(data=os.urandom(w["size"])) for _ in range(w["count"])]
        await peer.upload(messages[: min(len(messages), 1000)])
    await wait_go(w["name"])
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    if kind == "unary_seq":
        max_calls, deadline = w["max_calls"], t0 + w["max_seconds"]
        lat: list[int] = []
        clock = time.perf_counter_ns
        while len(lat) < max_calls:
            s = clock()
            await peer.unary(data)
            e = clock()
            lat.append(e - s)
            if e / 1e9 >= deadline:
                break
        lat.sort()
        res["calls"] = len(lat)
        res["p50_us"] = lat[int(0.50 * (len(lat) - 1))] / 1000
        res["p99_us"] = lat[int(0.99 * (len(lat) - 1))] / 1000
    elif kind == "unary_conc":
        max_calls, deadline = w["max_calls"], t0 + w["max_seconds"]
        started = 0

        async def worker() -> None:
            nonlocal started
            while started < max_calls and time.perf_counter() < deadline:
                started += 1
                await peer.unary(data)

        await asyncio.gather(*(worker() for _ in range(w["concurrency"])))
        res["calls"] = started
    elif kind == "download":
        n, total = await peer.download(w["count"], w["size"])
        if n != w["count"]:
            raise RuntimeError(f"got {n} messages, want {w['count']}")
        res["msgs"], res["bytes"] = n, total
    elif kind == "upload":
        n = await peer.upload(messages)
        if n != w["count"]:
            raise RuntimeError(f"server counted {n} messages, want {w['count']}")
        res["msgs"], res["bytes"] = n, n * w["size"]
    else:
        raise ValueError(f"unknown workload kind {kind}")
    res["seconds"] = time.perf_counter() - t0
    res["client_cpu_s"] = cpu_seconds() - cpu0
    return res


def run_workload_sync(peer: Any, w: dict[str, Any]) -> dict[str, Any]:
    """``run_workload`` for a blocking client: the same steps, the concurrent run on threads."""
    import threading

    kind = w["kind"]
    res: dict[str, Any] = {}
    data = os.urandom(16)
    messages: list[Payload] = []
    if kind in ("unary_seq", "unary_conc"):
        for _ in range(w.get("warmup", 200)):
            peer.unary(data)
    elif kind == "download":
        peer.download(min(w["count"], 1000), w["size"])
    elif kind == "upload":
        messages = [Payload(data=os.urandom(w["size"])) for _ in range(w["count"])]
        peer.upload(messages[: min(len(messages), 1000)])
    emit({"event": "ready", "workload": w["name"]})
    if not sys.stdin.readline():
        raise SystemExit("orchestrator went away")
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    if kind == "unary_seq":
        max_calls, deadline = w["max_calls"], t0 + w["max_seconds"]
        lat: list[int] = []
        clock = time.perf_counter_ns
        while len(lat) < max_calls:
            s = clock()
            peer.unary(data)
            e = clock()
            lat.append(e - s)
            if e / 1e9 >= deadline:
                break
        lat.sort()
        res["calls"] = len(lat)
        res["p50_us"] = lat[int(0.50 * (len(lat) - 1))] / 1000
        res["p99_us"] = lat[int(0.99 * (len(lat) - 1))] / 1000
    elif kind == "unary_conc":
        max_calls, deadline = w["max_calls"], t0 + w["max_seconds"]
        started = 0
        lock = threading.Lock()
        errors: list[BaseException] = []

        def worker() -> None:
            nonlocal started
            try:
                while not errors and time.perf_counter() < deadline:
                    with lock:
                        if started >= max_calls:
                            return
                        started += 1
                    peer.unary(data)
            except BaseException as exc:  # reported once all threads are done
                errors.append(exc)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(w["concurrency"])]
        for t in threads:
            t.start()
        for t in threads:
            t.join(w.get("timeout", 60))
        if errors:
            raise errors[0]
        res["calls"] = started
    elif kind == "download":
        n, total = peer.download(w["count"], w["size"])
        if n != w["count"]:
            raise RuntimeError(f"got {n} messages, want {w['count']}")
        res["msgs"], res["bytes"] = n, total
    elif kind == "upload":
        n = peer.upload(messages)
        if n != w["count"]:
            raise RuntimeError(f"server counted {n} messages, want {w['count']}")
        res["msgs"], res["bytes"] = n, n * w["size"]
    else:
        raise ValueError(f"unknown workload kind {kind}")
    res["seconds"] = time.perf_counter() - t0
    res["client_cpu_s"] = cpu_seconds() - cpu0
    return res


def main_sync(impl: str, url: str, spec: dict[str, Any]) -> None:
    """The blocking clients' loop. A workload's time limit is not enforced inside a call (the
    orchestrator's process timeout bounds the whole run)."""
    peer = SYNC_ADAPTERS[impl](url)
    try:
        for w in spec["workloads"]:
            try:
                res = run_workload_sync(peer, w)
            except Exception as exc:
                emit(
                    {
                        "event": "error",
                        "workload": w["name"],
                        "error": f"{type(exc).__name__}: {exc}",
                    }
                )
                continue
            emit({"event": "result", "workload": w["name"], **res})
    finally:
        peer.close()
    emit({"event": "done", "versions": versions()})


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("connect-python", "connectrpc", "pyqwest", "grpcio", "protobuf", "aiohttp"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


async def main_async(impl: str, url: str, spec: dict[str, Any]) -> None:
    peer = ADAPTERS[impl](url)
    try:
        for w in spec["workloads"]:
            try:
                res = await asyncio.wait_for(run_workload(peer, w), w.get("timeout", 60))
            except (Exception, asyncio.TimeoutError) as exc:
                emit(
                    {
                        "event": "error",
                        "workload": w["name"],
                        "error": f"{type(exc).__name__}: {exc}",
                    }
                )
                continue
            emit({"event": "result", "workload": w["name"], **res})
    finally:
        await peer.aclose()
    emit({"event": "done", "versions": versions()})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", required=True, choices=sorted({*ADAPTERS, *SYNC_ADAPTERS}))
    parser.add_argument("--url", required=True)
    parser.add_argument("--spec", required=True)
    args = parser.parse_args()
    if args.impl in SYNC_ADAPTERS:
        main_sync(args.impl, args.url, json.loads(args.spec))
        return
    asyncio.run(main_async(args.impl, args.url, json.loads(args.spec)))


if __name__ == "__main__":
    main()
