"""Measure how ASGI servers treat slow readers and slowloris clients (issue 8, items 9 and 10).

Two experiments, run one server process at a time, on 127.0.0.1 only, each bounded in time:

backpressure
    The server serves a server-streaming Connect method that emits 1 MiB messages as fast
    as it can (``connect``), and, as a control, a plain ASGI app that sends 1 MiB body
    chunks in a loop (``plain``). A raw client sends one request and then stops reading:
    over HTTP/1.1 it stops reading the socket; over h2c it keeps reading the socket (so
    TCP never pushes back) but never sends a WINDOW_UPDATE, so the server's HTTP/2 flow
    control window runs out after 64 KiB. The summed RSS of the server's process tree
    (``/proc/<pid>/status`` VmRSS) is sampled every 0.5 s for ``--duration`` seconds.
    A server whose ``send`` applies backpressure stays flat; one that buffers grows by
    roughly the rate the app can produce. A run stops early once RSS passes ``--rss-cap``.

slowloris
    ``--conns`` connections each send a partial request head (``POST /x HTTP/1.1``,
    ``Host``) and then one more header byte every ``--drip`` seconds. The time until the
    server closes each connection is recorded, up to ``--slowloris-cap`` seconds. Each
    server runs with its defaults and then with the settings recommended in
    docs/DEPLOYMENT.md. A normal request on a fresh connection is made half way through to
    see whether the server still answers.

Where the servers come from
    The servers run from a separate virtualenv, never the project's: by default
    ``~/.cache/connectrpc-server-limits/venv``, created on first use with
    ``uv venv`` + ``uv pip install -e <repo> hypercorn uvicorn httptools zttp granian pyvoy h2``
    (PyPI only). ``--venv PATH`` uses another one (it must have connectrpc importable).
    The client side of the script needs only the standard library and ``h2`` (in the
    project's dev environment). The servers import their apps from this file
    (``server_limits:connect_app`` / ``server_limits:plain_app``); ``pyvoy`` is launched
    as the Envoy process its CLI would start, from ``pyvoy``'s own config builder, so that
    the tuned run can add Envoy settings.

Usage
    uv run python tools/server_limits.py                      # everything (~10 minutes)
    uv run python tools/server_limits.py --only backpressure --servers hypercorn,granian
    uv run python tools/server_limits.py --only slowloris --conns 200 --slowloris-cap 30
    uv run python tools/server_limits.py --json /tmp/limits.json

Prints Markdown tables. Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_VENV = Path.home() / ".cache" / "connectrpc-server-limits" / "venv"
SERVER_PACKAGES = ["hypercorn", "uvicorn", "httptools", "zttp", "granian", "pyvoy", "h2"]
MIB = 1024 * 1024
CHUNK = 1 * MIB
# The server-side producers stop by themselves after this long, whatever the client does.
PRODUCER_MAX_SECONDS = 120.0
FLOOD_PATH = "/limits.v1.FloodService/Flood"

# --------------------------------------------------------------------------------------------
# Server side: the apps the servers import (``server_limits:connect_app`` and so on).
# Built lazily so that importing this module for the client needs nothing but the stdlib.
# --------------------------------------------------------------------------------------------


def _build_connect_app() -> Any:
    from google.protobuf import empty_pb2, wrappers_pb2

    from connectrpc.method import MethodInfo, StreamType
    from connectrpc.server import ConnectASGIApplication, RequestContext, server_stream_handler

    flood: MethodInfo[Any, Any] = MethodInfo(
        "limits.v1.FloodService",
        "Flood",
        empty_pb2.Empty,
        wrappers_pb2.BytesValue,
        StreamType.SERVER_STREAM,
    )
    message = wrappers_pb2.BytesValue(value=b"x" * CHUNK)

    async def handle(request: Any, ctx: RequestContext) -> Any:
        deadline = time.monotonic() + PRODUCER_MAX_SECONDS
        while time.monotonic() < deadline:
            yield message

    return ConnectASGIApplication([server_stream_handler(flood, handle)])


async def plain_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A non-Connect ASGI app streaming 1 MiB chunks: the control for server-side growth."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    while True:  # drain the request body
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            break
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/octet-stream")],
        }
    )
    chunk = b"x" * CHUNK
    deadline = time.monotonic() + PRODUCER_MAX_SECONDS
    while time.monotonic() < deadline:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _patch_hypercorn_h2() -> None:
    """Resume a paused HTTP/2 writer only once its buffer has drained (see DEPLOYMENT.md).

    hypercorn 0.18's ``StreamBuffer.pop`` wakes the app's ``send`` when the chunk it took was
    small, rather than when the buffer is small. With the peer's window at zero it pops
    ``b""`` and so wakes the app with the buffer still full, each time the app pushes more.
    """
    from hypercorn.protocol import h2 as hyper_h2

    async def pop(self: Any, max_length: int) -> bytes:
        length = min(len(self.buffer), max_length)
        data = bytes(self.buffer[:length])
        del self.buffer[:length]
        if len(self.buffer) < hyper_h2.BUFFER_LOW_WATER:
            await self._paused.set()
        if len(self.buffer) == 0:
            await self._is_empty.set()
        return data

    hyper_h2.StreamBuffer.pop = pop  # type: ignore[method-assign]


# The server processes get SERVER_LIMITS_ROLE=server; only they build the Connect app.
if os.environ.get("SERVER_LIMITS_ROLE") == "server":
    if os.environ.get("SERVER_LIMITS_PATCH_HYPERCORN") == "1":
        _patch_hypercorn_h2()
    connect_app = _build_connect_app()


# --------------------------------------------------------------------------------------------
# Servers.
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Server:
    name: str  # e.g. "hypercorn"
    http: tuple[str, ...]  # HTTP versions it serves in cleartext: "1.1", "h2c"
    command: Callable[[Path, str, int, bool], list[str]]  # (python, app, port, tuned) -> argv
    default_desc: str
    tuned_desc: str
    env: dict[str, str] = dataclasses.field(default_factory=dict)


PYVOY_LAUNCHER = r"""
import json, os, sys
from pyvoy._server import PyvoyServer, get_envoy_environ, get_envoy_path
app, port, tuned = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
config = PyvoyServer(app, address="127.0.0.1", port=port).get_envoy_config()
if tuned:
    for listener in config["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for f in chain["filters"]:
                if f["name"] == "envoy.filters.network.http_connection_manager":
                    hcm = f["typed_config"]
                    hcm["request_headers_timeout"] = "10s"
                    hcm["stream_idle_timeout"] = "300s"
                    hcm.setdefault("common_http_protocol_options", {})["idle_timeout"] = "60s"
env = {**os.environ, **get_envoy_environ()}
envoy = get_envoy_path()
os.execve(envoy, [envoy, "--config-yaml", json.dumps(config), "--use-dynamic-base-id",
                  "--log-level", "error"], env)
"""

HYPERCORN_TUNED = ["--keep-alive", "5"]
# uvicorn has no header-read timeout: --timeout-keep-alive is only armed after a response.
UVICORN_TUNED = ["--timeout-keep-alive", "5"]
GRANIAN_TUNED = ["--http1-header-read-timeout", "5000"]


def _servers(http_override: str | None = None) -> dict[str, Server]:
    def hypercorn(py: Path, app: str, port: int, tuned: bool) -> list[str]:
        cmd = [str(py), "-m", "hypercorn", "--bind", f"127.0.0.1:{port}", "--log-level", "error"]
        return [*cmd, *(HYPERCORN_TUNED if tuned else []), app]

    def uvicorn(impl: str, *extra: str) -> Callable[[Path, str, int, bool], list[str]]:
        def cmd(py: Path, app: str, port: int, tuned: bool) -> list[str]:
            base = [
                str(py), "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
                "--http", impl, *extra, "--lifespan", "off", "--no-access-log",
                "--log-level", "error",
            ]  # fmt: skip
            return [*base, *(UVICORN_TUNED if tuned else []), app]

        return cmd

    def granian(version: str) -> Callable[[Path, str, int, bool], list[str]]:
        def cmd(py: Path, app: str, port: int, tuned: bool) -> list[str]:
            base = [
                str(py), "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
                "--port", str(port), "--http", version, "--no-access-log",
                "--log-level", "error",
            ]  # fmt: skip
            return [*base, *(GRANIAN_TUNED if tuned else []), app]

        return cmd

    def pyvoy(py: Path, app: str, port: int, tuned: bool) -> list[str]:
        return [str(py), "-c", PYVOY_LAUNCHER, app, str(port), "1" if tuned else "0"]

    return {
        "hypercorn": Server(
            "hypercorn", ("1.1", "h2c"), hypercorn, "defaults", " ".join(HYPERCORN_TUNED)
        ),
        "hypercorn-patched": Server(
            "hypercorn-patched",
            ("h2c",),
            hypercorn,
            "StreamBuffer.pop patched",
            "StreamBuffer.pop patched",
            env={"SERVER_LIMITS_PATCH_HYPERCORN": "1"},
        ),
        "uvicorn": Server(
            "uvicorn",
            ("1.1",),
            uvicorn("httptools"),
            "--http httptools",
            "--http httptools " + " ".join(UVICORN_TUNED),
        ),
        "uvicorn-h11": Server(
            "uvicorn-h11",
            ("1.1",),
            uvicorn("h11"),
            "--http h11",
            "--http h11 " + " ".join(UVICORN_TUNED),
        ),
        "uvicorn-zttp": Server(
            "uvicorn-zttp",
            ("1.1", "h2c"),
            uvicorn("zttp", "--http2"),
            "--http zttp --http2",
            "--http zttp --http2 " + " ".join(UVICORN_TUNED),
        ),
        "granian": Server(
            "granian", ("1.1",), granian("1"), "--http 1", "--http 1 " + " ".join(GRANIAN_TUNED)
        ),
        "granian-h2": Server("granian-h2", ("h2c",), granian("2"), "--http 2", "--http 2"),
        "pyvoy": Server(
            "pyvoy",
            ("1.1", "h2c"),
            pyvoy,
            "pyvoy defaults (Envoy codec AUTO)",
            "HCM request_headers_timeout 10s, stream_idle_timeout 300s, idle_timeout 60s",
        ),
    }


def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if python.exists():
        return python
    uv = shutil.which("uv")
    if uv is None:
        sys.exit(f"no venv at {venv} and no `uv` to create it; pass --venv")
    print(f"creating server venv {venv} (once) ...", file=sys.stderr)
    subprocess.run([uv, "venv", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [uv, "pip", "install", "--python", str(python), "-e", str(ROOT), *SERVER_PACKAGES],
        check=True,
    )
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running(
    server: Server, python: Path, app: str, tuned: bool, logdir: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    argv = server.command(python, f"server_limits:{app}", port, tuned)
    env = {**os.environ, **server.env, "SERVER_LIMITS_ROLE": "server"}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("VIRTUAL_ENV", None)
    log = logdir / f"{server.name}-{app}-{'tuned' if tuned else 'default'}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["nice", "-n", "5", *argv],
            cwd=HERE,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{server.name} exited early; see {log}:\n{log.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.name} did not listen on {port}; see {log}")
            time.sleep(0.2)
        time.sleep(0.5)  # let worker processes settle
        yield proc, port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def tree_rss_kib(root_pid: int) -> int:
    """Summed VmRSS of ``root_pid`` and all its descendants, in KiB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


# --------------------------------------------------------------------------------------------
# Backpressure.
# --------------------------------------------------------------------------------------------

CONNECT_HEADERS = [
    ("content-type", "application/connect+proto"),
    ("connect-protocol-version", "1"),
]
EMPTY_ENVELOPE = b"\x00\x00\x00\x00\x00"


def _http1_request(app: str) -> bytes:
    if app == "connect_app":
        head = f"POST {FLOOD_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in CONNECT_HEADERS)
        head += f"Content-Length: {len(EMPTY_ENVELOPE)}\r\n\r\n"
        return head.encode() + EMPTY_ENVELOPE
    return b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class StalledClient:
    """Sends one request, then stops consuming (HTTP/1.1: the socket; h2c: the window)."""

    def __init__(self, port: int, http: str, app: str) -> None:
        self.http = http
        self.received = 0
        self.status = ""
        self.closed = False
        self.sock = socket.socket()
        # A small receive buffer keeps the kernel's share of the in-flight bytes small.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        self.sock.connect(("127.0.0.1", port))
        self.sock.settimeout(10)
        if http == "1.1":
            self.sock.sendall(_http1_request(app))
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                data = self.sock.recv(4096)
                if not data:
                    break
                head += data
            self.status = head.split(b"\r\n", 1)[0].decode(errors="replace")
            self.received = len(head)
            # From here on the socket is never read again.
        else:
            self._start_h2(app)
        self.sock.setblocking(False)

    def _start_h2(self, app: str) -> None:
        import h2.config
        import h2.connection
        import h2.events

        self.h2events = h2.events
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.conn.initiate_connection()  # default windows: 65,535 bytes, never replenished
        headers = [
            (":method", "POST" if app == "connect_app" else "GET"),
            (":scheme", "http"),
            (":authority", "127.0.0.1"),
            (":path", FLOOD_PATH if app == "connect_app" else "/stream"),
        ]
        if app == "connect_app":
            headers += CONNECT_HEADERS
        self.stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(self.stream_id, headers, end_stream=app != "connect_app")
        if app == "connect_app":
            self.conn.send_data(self.stream_id, EMPTY_ENVELOPE, end_stream=True)
        self.sock.sendall(self.conn.data_to_send())
        deadline = time.monotonic() + 10
        while not self.status and time.monotonic() < deadline:
            self._h2_read(self.sock.recv(65536))

    def _h2_read(self, data: bytes) -> None:
        if not data:
            self.closed = True
            return
        for event in self.conn.receive_data(data):
            if isinstance(event, self.h2events.ResponseReceived):
                self.status = str(dict(cast(Any, event.headers)).get(":status", "?"))
            elif isinstance(event, self.h2events.DataReceived):
                self.received += len(event.data)  # deliberately not acknowledged
            elif isinstance(event, self.h2events.StreamEnded | self.h2events.StreamReset):
                self.closed = True
        out = self.conn.data_to_send()  # SETTINGS/PING acks only, never WINDOW_UPDATE
        if out:
            with contextlib.suppress(OSError):
                self.sock.sendall(out)

    def pump(self, until: float) -> None:
        """Wait until ``until``; over h2c keep reading the socket (but never the window)."""
        while (left := until - time.monotonic()) > 0:
            if self.http == "1.1" or self.closed:
                time.sleep(left)
                return
            ready, _, _ = select.select([self.sock], [], [], left)
            if ready:
                try:
                    self._h2_read(self.sock.recv(65536))
                except BlockingIOError:
                    pass
                except OSError:
                    self.closed = True

    def close(self) -> None:
        self.sock.close()


def measure_backpressure(
    server: Server, http: str, app: str, python: Path, args: argparse.Namespace, logdir: Path
) -> dict[str, Any]:
    result: dict[str, Any] = {"server": server.name, "http": http, "app": app}
    with running(server, python, app, False, logdir) as (proc, port):
        baseline = tree_rss_kib(proc.pid)
        client = StalledClient(port, http, app)
        samples: list[tuple[float, int]] = []
        start = time.monotonic()
        capped = False
        while True:
            t = time.monotonic() - start
            rss = tree_rss_kib(proc.pid)
            samples.append((round(t, 1), rss))
            if rss - baseline > args.rss_cap * 1024:
                capped = True
                break
            if t >= args.duration:
                break
            client.pump(start + len(samples) * 0.5)
        client.close()
        peak = max(r for _, r in samples)
        # Growth in the last 5 s of the run: ~0 for a bounded server.
        tail = [r for t, r in samples if t >= samples[-1][0] - 5]
        result.update(
            status=client.status,
            baseline_mib=round(baseline / 1024, 1),
            peak_mib=round(peak / 1024, 1),
            growth_mib=round((peak - baseline) / 1024, 1),
            last5s_mib=round((tail[-1] - tail[0]) / 1024, 1),
            seconds=samples[-1][0],
            capped=capped,
            client_got_kib=round(client.received / 1024),
            samples=samples,
        )
    return result


# --------------------------------------------------------------------------------------------
# Slowloris.
# --------------------------------------------------------------------------------------------


def _probe(port: int) -> str:
    """A normal request on a fresh connection: does the server still answer?"""
    try:
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.settimeout(5)
            s.sendall(b"GET /probe HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            line = s.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
        status = line.split(" ", 2)[1] if " " in line else repr(line)
        return f"{status} in {time.monotonic() - t0:.2f} s"
    except OSError as exc:
        return f"failed: {type(exc).__name__}"


def measure_slowloris(
    server: Server, tuned: bool, python: Path, args: argparse.Namespace, logdir: Path
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "server": server.name,
        "settings": server.tuned_desc if tuned else server.default_desc,
        "tuned": tuned,
    }
    with running(server, python, "connect_app", tuned, logdir) as (proc, port):
        socks: list[socket.socket] = []
        opened: dict[int, float] = {}
        connect_failed = 0
        t_open = time.monotonic()
        for _ in range(args.conns):
            s = socket.socket()
            s.settimeout(5)
            try:
                s.connect(("127.0.0.1", port))
                s.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\n")
            except OSError:
                connect_failed += 1
                s.close()
                continue
            s.setblocking(False)
            socks.append(s)
            opened[s.fileno()] = time.monotonic()
        open_seconds = time.monotonic() - t_open
        closed_after: dict[int, float] = {}
        got_response = 0
        start = time.monotonic()
        next_drip = start + args.drip
        probe = ""
        live = {s.fileno(): s for s in socks}
        while live and time.monotonic() - start < args.slowloris_cap:
            now = time.monotonic()
            if not probe and now - start >= min(5.0, args.slowloris_cap / 2):
                probe = _probe(port)
            timeout = max(0.0, min(next_drip, start + args.slowloris_cap) - now)
            readable, _, _ = select.select(list(live.values())[:1000], [], [], min(timeout, 0.5))
            for s in readable:
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    got_response += 1  # e.g. a 408; keep waiting for the close
                    continue
                fd = s.fileno()
                closed_after[fd] = time.monotonic() - opened[fd]
                del live[fd]
                s.close()
            if time.monotonic() >= next_drip:
                for fd, s in list(live.items()):
                    try:
                        s.send(b"x")  # one more byte of a header name
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed_after[fd] = time.monotonic() - opened[fd]
                        del live[fd]
                        s.close()
                next_drip += args.drip
        times = sorted(closed_after.values())
        result.update(
            conns=len(socks),
            connect_failed=connect_failed,
            open_seconds=round(open_seconds, 2),
            closed=len(times),
            still_open=len(live),
            cap_s=args.slowloris_cap,
            first_close_s=round(times[0], 1) if times else None,
            median_close_s=round(statistics.median(times), 1) if times else None,
            last_close_s=round(times[-1], 1) if times else None,
            responses=got_response,
            probe=probe or _probe(port),
            server_alive=proc.poll() is None,
        )
        for s in live.values():
            s.close()
    return result


# --------------------------------------------------------------------------------------------
# Main.
# --------------------------------------------------------------------------------------------


def _fmt_close(r: dict[str, Any]) -> str:
    if r["closed"] == 0:
        return f"none closed in {r['cap_s']:.0f} s"
    text = f"{r['first_close_s']} / {r['median_close_s']} / {r['last_close_s']} s"
    if r["still_open"]:
        text += f" ({r['still_open']} still open at {r['cap_s']:.0f} s)"
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["backpressure", "slowloris"])
    parser.add_argument("--servers", help="comma-separated subset of: " + ", ".join(_servers()))
    parser.add_argument("--apps", default="connect_app,plain_app")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--duration", type=float, default=15.0, help="backpressure seconds")
    parser.add_argument("--rss-cap", type=float, default=3072, help="MiB of growth to stop at")
    parser.add_argument("--conns", type=int, default=500, help="slowloris connections (<=1000)")
    parser.add_argument("--drip", type=float, default=2.0, help="seconds between header bytes")
    parser.add_argument("--slowloris-cap", type=float, default=40.0, help="seconds to wait")
    parser.add_argument("--no-tuned", action="store_true", help="slowloris: defaults only")
    parser.add_argument("--json", type=Path, help="write all results here")
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        sys.exit("needs Linux (/proc)")
    args.conns = max(1, min(args.conns, 1000))
    args.duration = min(args.duration, 60.0)
    args.slowloris_cap = min(args.slowloris_cap, 120.0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.conns + 64:
        want = min(hard, args.conns + 256) if hard != resource.RLIM_INFINITY else args.conns + 256
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        args.conns = min(args.conns, want - 64)

    python = ensure_venv(args.venv.expanduser())
    servers = _servers()
    chosen = args.servers.split(",") if args.servers else list(servers)
    apps = args.apps.split(",")
    logdir = Path(tempfile.mkdtemp(prefix="server-limits-"))
    results: dict[str, list[dict[str, Any]]] = {"backpressure": [], "slowloris": []}

    if args.only in (None, "backpressure"):
        print("## Backpressure: server-stream of 1 MiB messages to a client that stops reading\n")
        print(f"{args.duration:.0f} s, RSS of the server's process tree, sampled every 0.5 s.\n")
        print("| server | HTTP | app | baseline MiB | peak MiB | growth MiB | last 5 s MiB "
              "| client got KiB | note |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|")
        for name in chosen:
            server = servers[name]
            for http in server.http:
                for app in apps:
                    if server.name == "hypercorn-patched" and app != "connect_app":
                        continue
                    try:
                        r = measure_backpressure(server, http, app, python, args, logdir)
                    except Exception as exc:
                        print(f"| {name} | {http} | {app} | error: {exc!s:.200} |||||")
                        continue
                    results["backpressure"].append(r)
                    note = f"stopped at {r['seconds']} s: over cap" if r["capped"] else ""
                    if not r["status"].startswith(("HTTP/1.1 200", "200")):
                        note += f" status {r['status']!r}"
                    print(
                        f"| {name} | {http} | {app} | {r['baseline_mib']} | {r['peak_mib']} "
                        f"| {r['growth_mib']} | {r['last5s_mib']} | {r['client_got_kib']} "
                        f"| {note} |",
                        flush=True,
                    )
        print()

    if args.only in (None, "slowloris"):
        print(f"## Slowloris: {args.conns} partial request heads, one more byte every "
              f"{args.drip:g} s\n")  # fmt: skip
        print("| server | settings | conns | closed | first / median / last close "
              "| probe mid-attack |")  # fmt: skip
        print("|---|---|---|---|---|---|")
        for name in chosen:
            server = servers[name]
            if "1.1" not in server.http:
                continue
            for tuned in (False,) if args.no_tuned else (False, True):
                try:
                    r = measure_slowloris(server, tuned, python, args, logdir)
                except Exception as exc:
                    print(f"| {name} | error: {exc!s:.200} |||||")
                    continue
                results["slowloris"].append(r)
                print(
                    f"| {name} | {r['settings']} | {r['conns']} | {r['closed']} "
                    f"| {_fmt_close(r)} | {r['probe']} |",
                    flush=True,
                )
        print()
    print(f"server logs: {logdir}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
