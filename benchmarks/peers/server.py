"""One Python server peer. Run by benchmarks/run.py with the peer's own interpreter:

    python server.py --impl ours|official|grpc [--server uvicorn|hypercorn|granian|pyvoy|gthread|gsync] --port N

PYTHONPATH must hold the peer's generated code (benchmarks/.gen/<impl>). Every server uses
the stdlib asyncio event loop; the uvicorn ones use httptools; compression is off.

* uvicorn: HTTP/1.1 only (no HTTP/2, so no gRPC).
* hypercorn: HTTP/1.1 and h2c (prior knowledge); our app runs with
  ``connectrpc.hypercorn.patch_hypercorn_h2()`` applied, which gRPC over hypercorn needs.
* granian: HTTP/1.1 and h2c, one worker; no response trailers in its ASGI server, so no gRPC.
  This process execs the granian CLI, which runs the worker as a child process.
* pyvoy: Envoy with embedded Python; HTTP/1.1 and h2c with trailers (gRPC). This process execs
  the pyvoy CLI, which runs Envoy as a child process.
* gthread, gsync: the WSGI apps (``ConnectWSGIApplication``, ours and the official one) under
  gunicorn, one worker, with its ``gthread`` worker (``GUNICORN_THREADS`` threads, default 4;
  keep-alive) or its ``sync`` worker (one request at a time, a connection per request). This
  process execs the gunicorn CLI, whose master runs the worker as a child process.

The orchestrator counts the CPU time of the server process and all its descendants.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench.v1.bench_pb2 import DownloadRequest, Payload, UploadSummary
from common import chunk


class Service:
    """The service logic, identical for every Python peer."""

    async def unary(self, request: Payload, ctx: Any) -> Payload:
        return Payload(data=request.data)

    async def download(self, request: DownloadRequest, ctx: Any) -> AsyncIterator[Payload]:
        size = request.size
        for i in range(request.count):
            yield Payload(data=chunk(i, size))

    async def upload(self, requests: AsyncIterator[Payload], ctx: Any) -> UploadSummary:
        n = size = 0
        async for message in requests:
            n += 1
            size += len(message.data)
        return UploadSummary(messages=n, bytes=size)


def ours_app() -> Any:
    from ours_bindings import DOWNLOAD, UNARY, UPLOAD

    from connectrpc.server import (
        ConnectASGIApplication,
        ServerOptions,
        client_stream_handler,
        server_stream_handler,
        unary_handler,
    )

    svc = Service()
    return ConnectASGIApplication(
        [
            unary_handler(UNARY, svc.unary),
            server_stream_handler(DOWNLOAD, svc.download),
            client_stream_handler(UPLOAD, svc.upload),
        ],
        options=ServerOptions(compressions=(), read_max_bytes=64 << 20),
    )


def official_app() -> Any:
    from bench.v1.bench_connect import BenchServiceASGIApplication

    class Official(Service):
        # The official runtime calls handlers with (request, ctx) positionally, like ours.
        pass

    return BenchServiceASGIApplication(Official(), compressions=(), read_max_bytes=64 << 20)


class SyncService:
    """The same service logic with plain functions, for the WSGI apps."""

    def unary(self, request: Payload, ctx: Any) -> Payload:
        return Payload(data=request.data)

    def download(self, request: DownloadRequest, ctx: Any) -> Iterator[Payload]:
        size = request.size
        for i in range(request.count):
            yield Payload(data=chunk(i, size))

    def upload(self, requests: Iterator[Payload], ctx: Any) -> UploadSummary:
        n = size = 0
        for message in requests:
            n += 1
            size += len(message.data)
        return UploadSummary(messages=n, bytes=size)


def ours_wsgi_app() -> Any:
    from ours_bindings import DOWNLOAD, UNARY, UPLOAD

    from connectrpc.server import (
        ConnectWSGIApplication,
        ServerOptions,
        sync_client_stream_handler,
        sync_server_stream_handler,
        sync_unary_handler,
    )

    svc = SyncService()
    return ConnectWSGIApplication(
        [
            sync_unary_handler(UNARY, svc.unary),
            sync_server_stream_handler(DOWNLOAD, svc.download),
            sync_client_stream_handler(UPLOAD, svc.upload),
        ],
        options=ServerOptions(compressions=(), read_max_bytes=64 << 20),
    )


def official_wsgi_app() -> Any:
    from bench.v1.bench_connect import BenchServiceWSGIApplication

    return BenchServiceWSGIApplication(SyncService(), compressions=(), read_max_bytes=64 << 20)


async def serve_asgi(app: Any, server: str, port: int) -> None:
    if server == "uvicorn":
        import uvicorn

        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            loop="asyncio",
            http="httptools",
            lifespan="off",
            access_log=False,
            log_level="warning",
        )
        await uvicorn.Server(config).serve()
    elif server == "hypercorn":
        with contextlib.suppress(ImportError):  # only our runtime has (and needs) the patch
            from connectrpc.hypercorn import patch_hypercorn_h2

            patch_hypercorn_h2()
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        # Default 1000: hypercorn then closes the connection (GOAWAY on HTTP/2), failing the
        # calls in flight on it; uvicorn and the other servers have no such limit.
        config.keep_alive_max_requests = 1 << 30
        config.accesslog = None
        config.loglevel = "WARNING"
        await serve(app, config, mode="asgi")
    else:
        raise SystemExit(f"unknown server {server}")


async def serve_grpc(port: int) -> None:
    import grpc
    from bench.v1 import bench_pb2_grpc

    class Servicer(bench_pb2_grpc.BenchServiceServicer):
        async def Unary(self, request: Payload, context: Any) -> Payload:  # noqa: N802
            return Payload(data=request.data)

        async def Download(self, request: DownloadRequest, context: Any) -> AsyncIterator[Payload]:  # noqa: N802
            size = request.size
            for i in range(request.count):
                yield Payload(data=chunk(i, size))

        async def Upload(  # noqa: N802
            self, request_iterator: AsyncIterator[Payload], context: Any
        ) -> UploadSummary:
            n = size = 0
            async for message in request_iterator:
                n += 1
                size += len(message.data)
            return UploadSummary(messages=n, bytes=size)

    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", 64 << 20),
            ("grpc.max_send_message_length", 64 << 20),
        ]
    )
    bench_pb2_grpc.add_BenchServiceServicer_to_server(Servicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def exec_server(impl: str, server: str, port: int) -> None:
    """Replaces this process with granian's or pyvoy's CLI serving ``apps:<impl>``."""
    here = os.path.dirname(os.path.abspath(__file__))
    extra = filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))
    path = [here, *(os.path.abspath(p) for p in extra)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    app = f"apps:{impl}"
    if server in ("gthread", "gsync"):
        gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
        threads = os.environ.get("GUNICORN_THREADS", "4")
        worker = ["--worker-class", "gthread", "--threads", threads]
        if server == "gsync":
            worker = ["--worker-class", "sync"]
        args = [
            gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "1", *worker,
            "--keep-alive", "60", "--backlog", "2048", "--log-level", "warning",
            f"apps:{impl}_wsgi",
        ]  # fmt: skip
    elif server == "granian":
        args = [
            sys.executable, "-m", "granian", "--interface", "asgi", "--http", "auto",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--loop", "asyncio",
            "--no-ws", "--no-access-log", "--log-level", "warning", app,
        ]  # fmt: skip
    else:
        pyvoy = os.path.join(os.path.dirname(sys.executable), "pyvoy")
        args = [
            pyvoy, "--address", "127.0.0.1", "--port", str(port), "--loop", "asyncio",
            "--no-lifespan", "--log-level", "warning", app,
        ]  # fmt: skip
    os.chdir(here)
    os.execve(args[0], args, env)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", required=True, choices=["ours", "official", "grpc"])
    parser.add_argument(
        "--server",
        default="uvicorn",
        choices=["uvicorn", "hypercorn", "granian", "pyvoy", "gthread", "gsync", "grpc"],
    )
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.impl == "grpc":
        asyncio.run(serve_grpc(args.port))
        return
    if args.server in ("granian", "pyvoy", "gthread", "gsync"):
        exec_server(args.impl, args.server, args.port)
    app = ours_app() if args.impl == "ours" else official_app()
    asyncio.run(serve_asgi(app, args.server, args.port))


if __name__ == "__main__":
    main()
