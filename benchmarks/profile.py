#!/usr/bin/env python3
"""Profiles our client and our server (uvicorn) with py-spy, one workload at a time.

    python3 benchmarks/profile.py [--workloads unary_seq,stream_small,upload_small] [--rate 500]
                                  [--config NAME]

``--config`` picks any configuration of run.py (default ``ours``: our client → our server on
uvicorn), e.g. ``go_ours_uvicorn`` and ``go_official_uvicorn`` to profile a server under the
connect-go client (``go_ours_gthread``: the WSGI app's gunicorn worker), ``sync_ours_go`` our
blocking client; a process that is not Python (the Go peer) is not profiled. The report goes
to results/profile.md for the default and to results/profile-<config>.md otherwise.

For each workload the server runs under ``py-spy record -p`` and the client is started by
``py-spy record --``; both write collapsed stacks (benchmarks/results/profile/*.txt, open them
with speedscope or inferno) and the script writes a summary of the hot spots,
benchmarks/results/profile.md: self time and inclusive time per file:function, as a share of
the samples in which the process was running (idle waits are not sampled).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run

PYSPY = str(run.VENVS / "ours" / "bin" / "py-spy")
OUT = run.RESULTS / "profile"

WORKLOADS = {
    "unary_seq": {
        "name": "unary_seq",
        "kind": "unary_seq",
        "max_calls": 30000,
        "max_seconds": 8.0,
        "warmup": 300,
        "timeout": 60,
    },
    "unary_c32": {
        "name": "unary_c32",
        "kind": "unary_conc",
        "concurrency": 32,
        "max_calls": 500000,
        "max_seconds": 8.0,
        "warmup": 300,
        "timeout": 60,
    },
    "stream_small": {
        "name": "stream_small",
        "kind": "download",
        "count": 400000,
        "size": 64,
        "timeout": 60,
    },
    "upload_small": {
        "name": "upload_small",
        "kind": "upload",
        "count": 400000,
        "size": 64,
        "timeout": 60,
    },
    "stream_large": {
        "name": "stream_large",
        "kind": "download",
        "count": 2000,
        "size": 1 << 20,
        "timeout": 60,
    },
}

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def shorten(path: str) -> str:
    """connectrpc/x.py, aiohttp/x.py, asyncio/x.py, peers/x.py ..."""
    for marker in ("/site-packages/", "/lib/python3.", "/benchmarks/"):
        i = path.find(marker)
        if i >= 0:
            rest = path[i + len(marker) :]
            return rest.split("/", 1)[1] if marker == "/lib/python3." else rest
    i = path.find("/connectrpc/")
    if i >= 0:
        return path[i + 1 :]
    return os.path.basename(path)


# Leaf frames that are the event loop waiting for IO: counted apart, as idle.
IDLE = ("selectors.py:EpollSelector.select",)


def parse(path: Path) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    total = 0
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = []
        for f in stack.split(";"):
            m = FRAME.match(f.strip())
            if m is None:
                continue  # process / thread labels
            frames.append(f"{shorten(m['file'])}:{m['func']}")
        if not frames or frames[-1].endswith(IDLE):
            continue
        total += n
        own[frames[-1]] += n
        for key in set(frames):
            incl[key] += n
    return total, own, incl


def report(workload: str, side: str, path: Path, top: int) -> list[str]:
    total, own, incl = parse(path)
    lines = [f"### {workload} — {side} ({total} samples)", ""]
    if not total:
        return [*lines, "no samples", ""]
    lines += ["Self time:", "", "| % | file:function |", "|---:|---|"]
    for key, n in own.most_common(top):
        lines.append(f"| {100 * n / total:.1f} | `{key}` |")
    lines += [
        "",
        "Inclusive time, connectrpc/ and the HTTP stack:",
        "",
        "| % | file:function |",
        "|---:|---|",
    ]
    interesting = [
        (k, n)
        for k, n in incl.most_common()
        if k.startswith("connectrpc/")
        or k.startswith(("aiohttp/", "uvicorn/", "google/protobuf", "multidict/"))
    ]
    for key, n in interesting[:top]:
        lines.append(f"| {100 * n / total:.1f} | `{key}` |")
    lines.append("")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workloads", default="unary_seq,stream_small,upload_small")
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--config", default="ours", help="a configuration name of run.py")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    log_dir = OUT
    config = next(c for c in run.CONFIGS if c.name == args.config)
    server_def = next(s for s in run.SERVERS if s.key == config.server)
    prefix = "" if config.name == "ours" else f"{config.name}-"
    doc = [
        f"# Profile: {config.label}",
        "",
        f"py-spy {args.rate} Hz, non-blocking, sampling only the measured phase; percentages are of "
        "samples where the process was busy (the event loop waiting in epoll is excluded); "
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}.",
        "",
    ]
    for name in args.workloads.split(","):
        workload = WORKLOADS[name]
        server = run.RunningServer(server_def, log_dir)
        server_out = OUT / f"{prefix}{name}-server.txt"
        client_out = OUT / f"{prefix}{name}-client.txt"
        spies: list[subprocess.Popen[bytes]] = []

        def spy(
            pid: int,
            out: Path,
            children: bool = False,
            spies: list[subprocess.Popen[bytes]] = spies,
        ) -> None:
            cmd = [PYSPY, "record", "--nonblocking", "--full-filenames", "-r", str(args.rate)]
            if children:
                cmd.append("--subprocesses")
            cmd += ["-f", "raw", "-o", str(out), "-p", str(pid)]
            spies.append(
                subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )

        def on_ready(
            client_pid: int,
            server: run.RunningServer = server,
            server_out: Path = server_out,
            client_out: Path = client_out,
        ) -> None:
            # Sample only the measured part: after the client's imports, set-up and warm-up.
            if server_def.venv is not None:
                # gunicorn's worker is a child of the process started (its master).
                spy(server.pid, server_out, {"gthread", "gsync"} & set(server_def.args) != set())
            if config.client != "go":
                spy(client_pid, client_out)
            time.sleep(0.3)  # let py-spy attach before the measurement starts

        try:
            progress = run.Progress(1, 1)
            results, _ = run.run_client(
                config, server, {"workloads": [workload]}, log_dir, progress, on_ready=on_ready
            )
            progress.finish()
            metric = {"unary_seq": "unary_seq_cps", "unary_c32": "unary_c32_cps"}.get(name, name)
            value = run.metric_value(metric, results)
            doc.append(f"## {name}: {run.fmt(value)} {run.METRICS[metric][2]} under the profiler")
            doc.append("")
        finally:
            for p in spies:  # the client's spy ends with the client; the server's needs SIGINT
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
            server.stop()
        if config.client != "go":
            doc += report(name, "client", client_out, args.top)
        if server_def.venv is not None:
            doc += report(name, "server", server_out, args.top)
    report_name = "profile.md" if config.name == "ours" else f"profile-{config.name}.md"
    (run.RESULTS / report_name).write_text("\n".join(doc) + "\n")
    print("\n".join(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
