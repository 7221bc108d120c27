"""Run the conformance service under ASGI servers other than hypercorn, with no patches.

``conformance/server.py`` calls ``server(name)`` when ``CONFORMANCE_SERVER`` names one of:

* ``pyvoy``: Envoy with embedded Python (PyPI ``pyvoy``), started through pyvoy's own
  ``PyvoyServer`` (the API behind its CLI) as a child Envoy process on 127.0.0.1, port 0.
  HTTP/1.1 and h2c on plain TCP (Envoy's codec AUTO), ALPN h2/http/1.1 under TLS, client
  certificates, and HTTP/3 over QUIC when the runner asks for HTTP/3.
* ``granian``: ``python -m granian --interface asgi --http auto`` as a child process on a free
  port. HTTP/1.1 and h2c on plain TCP, ALPN under TLS (granian wants a PKCS#8 key, so the
  runner's key is rewritten as PKCS#8), client certificates with ``--ssl-client-verify``.
* ``uvicorn``: in-process, ``uvicorn.Server`` on a socket we bind; HTTP/1.1 only
  (httptools when installed, else h11; ``CONFORMANCE_UVICORN_HTTP`` overrides), TLS and
  client certificates through its ``ssl_*`` settings.

* ``gunicorn``: ``python -m gunicorn`` as a child process on a free port, serving the WSGI
  application ``app:create_wsgi_app()`` (the sync implementation) with ``gthread`` workers.
  HTTP/1.1 only; TLS and client certificates through ``--certfile``/``--keyfile``/
  ``--ca-certs``/``--cert-reqs``.

The child servers import ``app:app`` (``conformance/app.py``); the runner's message receive
limit goes to it as ``CONFORMANCE_READ_MAX_BYTES``. Every server keeps its defaults except
where noted. Each function reads nothing from stdin: it gets the runner's
``ServerCompatRequest``, starts the server, waits until it answers, writes the
``ServerCompatResponse`` to stdout, and on SIGTERM (or SIGINT) stops the server (and its
children).
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
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from connectrpc_conformance.v1 import config_pb2, server_compat_pb2

HERE = Path(__file__).resolve().parent
READ_MAX_BYTES_ENV = "CONFORMANCE_READ_MAX_BYTES"  # read by conformance/app.py
APP = "app:app"
STARTUP_TIMEOUT = 60.0  # seconds until a child server answers
STOP_TIMEOUT = 5.0  # seconds from SIGTERM to SIGKILL for a child server

ServerCompatRequest = server_compat_pb2.ServerCompatRequest
ServeFunction = Callable[[ServerCompatRequest, Path], Coroutine[Any, Any, None]]


def server(name: str) -> ServeFunction:
    """The serve coroutine function for ``CONFORMANCE_SERVER=name``."""
    servers: dict[str, ServeFunction] = {
        "pyvoy": serve_pyvoy,
        "granian": serve_granian,
        "uvicorn": serve_uvicorn,
        "gunicorn": serve_gunicorn,
    }
    try:
        return servers[name]
    except KeyError:
        choices = ", ".join(["hypercorn", *servers])
        raise SystemExit(
            f"conformance server: unknown CONFORMANCE_SERVER={name!r} (one of {choices})"
        ) from None


# --- shared plumbing -----------------------------------------------------------------------


def _write_response(response: server_compat_pb2.ServerCompatResponse) -> None:
    data = response.SerializeToString()
    sys.stdout.buffer.write(struct.pack(">I", len(data)) + data)
    sys.stdout.buffer.flush()


def _log(message: str) -> None:
    print(f"conformance server: {message}", file=sys.stderr, flush=True)


class _TLSFiles:
    """The runner's TLS material, written to files in ``workdir``."""

    def __init__(self, request: ServerCompatRequest, workdir: Path) -> None:
        self.cert = workdir / "server.crt"
        self.key = workdir / "server.key"
        self.cert.write_bytes(request.server_creds.cert)
        self.key.write_bytes(request.server_creds.key)
        self.client_ca: Path | None = None
        if request.client_tls_cert:
            self.client_ca = workdir / "client-ca.crt"
            self.client_ca.write_bytes(request.client_tls_cert)

    def pkcs8_key(self) -> Path:
        """The server key as PKCS#8 PEM (granian reads no other format)."""
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(self.key.read_bytes(), password=None)
        path = self.key.with_name("server.pkcs8.key")
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return path


def _child_env(request: ServerCompatRequest) -> dict[str, str]:
    """Environment for a child server: app.py importable, the receive limit passed on."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), str(HERE / "gen"), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    )
    env[READ_MAX_BYTES_ENV] = str(request.message_receive_limit or 0)
    env.pop("CONFORMANCE_SERVER", None)
    return env


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _first(*aws: Awaitable[object]) -> None:
    """Wait until the first of ``aws`` finishes; cancel the others."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _free_port() -> int:
    """A port that was free a moment ago (for servers that cannot adopt a socket)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _answers(port: int, use_tls: bool) -> bool:
    """Whether a server on 127.0.0.1:port answers a request (any answer, even a TLS alert).

    A listening socket alone proves little: granian's workers accept on a socket their
    parent bound, so the kernel completes TCP handshakes before any worker is up.
    """
    context = None
    if use_tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["http/1.1"])
    writer = None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=context), 5
        )
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        await writer.drain()
        return bool(await asyncio.wait_for(reader.read(1), 5))
    except ssl.SSLError:
        return True  # a TLS alert (no client certificate): the server is up
    except (OSError, asyncio.TimeoutError):
        return False
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _stop_process(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the child's process group, then SIGKILL it after STOP_TIMEOUT."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except asyncio.TimeoutError:
            _log(f"child {proc.pid} ignored SIGTERM for {STOP_TIMEOUT} s; killing it")
    # Its workers too, even when the parent exited first.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


# --- pyvoy ---------------------------------------------------------------------------------


async def serve_pyvoy(request: ServerCompatRequest, workdir: Path) -> None:
    from pyvoy import PyvoyServer

    http3 = request.http_version == config_pb2.HTTP_VERSION_3
    tls: dict[str, object] = {}
    if request.use_tls:
        files = _TLSFiles(request, workdir)
        tls = {
            "tls_cert": files.cert,
            "tls_key": files.key,
            "tls_ca_cert": files.client_ca,
            "tls_require_client_certificate": files.client_ca is not None,
            "tls_enable_http3": http3,
        }
    elif http3:
        raise SystemExit("conformance server: HTTP/3 needs TLS")
    server = PyvoyServer(
        APP,
        address="127.0.0.1",
        port=0,
        # pyvoy hands Envoy's embedded Python our sys.path, which has conformance/ and its gen/.
        env={READ_MAX_BYTES_ENV: str(request.message_receive_limit or 0)},
        stdout=sys.stderr.fileno(),  # our stdout carries the ServerCompatResponse
        stderr=None,
        **tls,  # type: ignore[arg-type]
    )
    stop = _stop_event()
    await server.start()  # returns once Envoy's listeners are up (read from its admin API)
    try:
        port = server.listener_port_quic if http3 else server.listener_port
        assert port is not None
        response = server_compat_pb2.ServerCompatResponse(host="127.0.0.1", port=port)
        if request.use_tls:
            response.pem_cert = request.server_creds.cert
        _write_response(response)
        await _first(stop.wait(), server.wait())
        if not stop.is_set():
            _log(f"Envoy exited with status {await server.wait()}")
    finally:
        await server.stop()


# --- gunicorn ------------------------------------------------------------------------------

# gthread workers: each worker process answers several connections at once from a thread pool
# (the runner sends up to --parallel calls at a time, and the Timeouts cases hold a thread for
# their handler's delay) and keeps connections alive. Idle connections are kept longer than
# gunicorn's default 2 s: Go's client reuses an idle connection for up to 90 s, and a server
# closing it just as a request goes out fails that request with "broken pipe". (The sync
# worker class, one connection per process, timed out at start-up under the runner.)
GUNICORN_WORKERS = 2
GUNICORN_THREADS = 16


async def serve_gunicorn(request: ServerCompatRequest, workdir: Path) -> None:
    args = [
        sys.executable, "-m", "gunicorn", "--worker-class", "gthread",
        "--workers", str(GUNICORN_WORKERS), "--threads", str(GUNICORN_THREADS),
        "--keep-alive", "120", "--graceful-timeout", "2", "--log-level", "warning",
        "--no-control-socket",
    ]  # fmt: skip
    if request.use_tls:
        files = _TLSFiles(request, workdir)
        args += ["--certfile", str(files.cert), "--keyfile", str(files.key)]
        if files.client_ca is not None:
            args += ["--ca-certs", str(files.client_ca), "--cert-reqs", str(int(ssl.CERT_REQUIRED))]
    await _serve_child("gunicorn", request, workdir, args, lambda port: [
        "--bind", f"127.0.0.1:{port}", "app:create_wsgi_app()",
    ])  # fmt: skip


# --- granian -------------------------------------------------------------------------------


async def serve_granian(request: ServerCompatRequest, workdir: Path) -> None:
    args = [
        sys.executable, "-m", "granian", "--interface", "asgi", "--http", "auto",
        "--host", "127.0.0.1", "--workers", "1", "--no-ws", "--no-access-log",
        "--log-level", "warning",
    ]  # fmt: skip
    if request.use_tls:
        files = _TLSFiles(request, workdir)
        args += ["--ssl-certificate", str(files.cert), "--ssl-keyfile", str(files.pkcs8_key())]
        if files.client_ca is not None:
            args += ["--ssl-ca", str(files.client_ca), "--ssl-client-verify"]
    await _serve_child("granian", request, workdir, args, lambda port: ["--port", str(port), APP])


async def _serve_child(
    name: str,
    request: ServerCompatRequest,
    workdir: Path,
    args: list[str],
    bind: Callable[[int], list[str]],
) -> None:
    """Run ``args + bind(port)`` as a child server on a free port until SIGTERM (another
    port if it does not come up, e.g. because the port was taken in the meantime)."""
    env = _child_env(request)
    stop = _stop_event()
    for _attempt in range(5):
        port = _free_port()
        proc = await asyncio.create_subprocess_exec(
            *args, *bind(port),
            env=env, stdin=asyncio.subprocess.DEVNULL, stdout=sys.stderr.fileno(),
            cwd=workdir,  # `-m` puts the working directory first on sys.path: keep it neutral
            start_new_session=True,  # its own process group, so that we can stop its workers
        )  # fmt: skip
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while proc.returncode is None and time.monotonic() < deadline:
                if await _answers(port, request.use_tls):
                    break
                await asyncio.sleep(0.1)
            else:
                _log(f"{name} did not start on port {port} (exit status {proc.returncode})")
                await _stop_process(proc)
                continue
            response = server_compat_pb2.ServerCompatResponse(host="127.0.0.1", port=port)
            if request.use_tls:
                response.pem_cert = request.server_creds.cert
            _write_response(response)
            await _first(stop.wait(), proc.wait())
            if not stop.is_set():
                _log(f"{name} exited with status {proc.returncode}")
            return
        finally:
            await _stop_process(proc)
    raise SystemExit(f"conformance server: {name} did not start")


# --- uvicorn -------------------------------------------------------------------------------


async def serve_uvicorn(request: ServerCompatRequest, workdir: Path) -> None:
    import uvicorn

    os.environ[READ_MAX_BYTES_ENV] = str(request.message_receive_limit or 0)
    from app import create_app

    tls: dict[str, object] = {}
    if request.use_tls:
        files = _TLSFiles(request, workdir)
        tls = {"ssl_certfile": str(files.cert), "ssl_keyfile": str(files.key)}
        if files.client_ca is not None:
            tls |= {"ssl_ca_certs": str(files.client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    config = uvicorn.Config(
        create_app(),
        http=os.environ.get("CONFORMANCE_UVICORN_HTTP") or "auto",
        ws="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        # uvicorn waits for open connections without bound by default; the runner wants us gone.
        timeout_graceful_shutdown=2,
        **tls,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)

    # uvicorn installs its own SIGTERM/SIGINT handlers while serving and re-raises a captured
    # signal afterwards; this handler then ends the process normally (and covers a signal that
    # arrives before uvicorn's handlers are in place).
    def exit_soon(_sig: int, _frame: object) -> None:
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, exit_soon)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(config.backlog)
    response = server_compat_pb2.ServerCompatResponse(host="127.0.0.1", port=sock.getsockname()[1])
    if request.use_tls:
        response.pem_cert = request.server_creds.cert
    _write_response(response)  # connections queue in the backlog until uvicorn accepts
    await server.serve(sockets=[sock])
