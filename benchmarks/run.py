#!/usr/bin/env python3
"""Benchmark orchestrator: runs every peer configuration on loopback and reports.

    python3 benchmarks/run.py [--quick] [--rounds N] [--only NAME,...] [--sync]

Run ``benchmarks/setup.sh`` first (``tools/bench.sh`` does both). Standard library only.

Method: each server runs in its own process for the whole run; each (round, configuration)
runs a fresh client process that executes every workload in turn. Configurations are
interleaved within a round (the order rotates between rounds), so drift and background load
hit all of them alike; ratios against the peers are computed within a round, and the report
gives medians and min-max over rounds. Every loop is bounded by a count and a time limit, and
every process by a timeout.
"""

# ruff: noqa: RUF001
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import select
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENVS = BENCH / ".venvs"
GEN = BENCH / ".gen"
PEERS = BENCH / "peers"
RESULTS = BENCH / "results"
GO_BIN = BENCH / "go" / "bin" / "connectbench"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# --- what runs --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Server:
    key: str
    label: str
    venv: str | None  # None: the Go binary
    args: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Config:
    name: str  # short id used in JSON
    label: str
    client: str  # ours | official | grpc | raw | go | ours_sync | official_sync | grpc_sync ...
    server: str  # Server.key
    workloads: tuple[str, ...] | None = None  # None: all
    protocol: str = "connect"  # the Go client's: connect | grpc (h2c) | grpcweb


SERVERS = [
    Server(
        "ours-uvicorn",
        "ours (uvicorn, HTTP/1.1)",
        "ours",
        ("--impl", "ours", "--server", "uvicorn"),
    ),
    Server(
        "ours-hypercorn",
        "ours (hypercorn, HTTP/1.1 and h2c, patch_hypercorn_h2)",
        "ours",
        ("--impl", "ours", "--server", "hypercorn"),
    ),
    Server("ours-granian", "ours (granian)", "ours", ("--impl", "ours", "--server", "granian")),
    Server("ours-pyvoy", "ours (pyvoy)", "ours", ("--impl", "ours", "--server", "pyvoy")),
    Server(
        "official-uvicorn",
        "official (uvicorn)",
        "official",
        ("--impl", "official", "--server", "uvicorn"),
    ),
    Server(
        "official-granian",
        "official (granian)",
        "official",
        ("--impl", "official", "--server", "granian"),
    ),
    Server(
        "official-pyvoy",
        "official (pyvoy)",
        "official",
        ("--impl", "official", "--server", "pyvoy"),
    ),
    Server("grpc", "grpc.aio", "grpc", ("--impl", "grpc", "--server", "grpc")),
    # The WSGI apps under gunicorn: one worker; gthread (4 threads, keep-alive) or sync.
    Server(
        "ours-gthread",
        "ours WSGI (gunicorn gthread)",
        "ours",
        ("--impl", "ours", "--server", "gthread"),
    ),
    Server(
        "official-gthread",
        "official WSGI (gunicorn gthread)",
        "official",
        ("--impl", "official", "--server", "gthread"),
    ),
    Server(
        "ours-gsync", "ours WSGI (gunicorn sync)", "ours", ("--impl", "ours", "--server", "gsync")
    ),
    Server(
        "official-gsync",
        "official WSGI (gunicorn sync)",
        "official",
        ("--impl", "official", "--server", "gsync"),
    ),
    Server("go", "connect-go (net/http)", None, ()),
]

CONFIGS = [
    Config("ours", "ours (aiohttp) → ours/uvicorn", "ours", "ours-uvicorn"),
    Config("ours_http1", "ours (HTTP1Transport) → ours/uvicorn", "ours_http1", "ours-uvicorn"),
    Config("ours_hypercorn", "ours → ours/hypercorn h1", "ours", "ours-hypercorn"),
    Config("official", "official → official/uvicorn", "official", "official-uvicorn"),
    Config("grpc", "grpc.aio → grpc.aio", "grpc", "grpc"),
    Config("go", "connect-go → connect-go", "go", "go"),
    Config("ours_to_official", "ours → official/uvicorn", "ours", "official-uvicorn"),
    Config("official_to_ours", "official → ours/uvicorn", "official", "ours-uvicorn"),
    Config("raw", "plain aiohttp, no RPC layer → ours/uvicorn (reference)", "raw", "ours-uvicorn"),
    # gRPC: grpc.aio's client against our app over h2c (and against its own server: "grpc").
    Config("grpc_to_ours_hypercorn", "grpc.aio → ours/hypercorn h2c", "grpc", "ours-hypercorn"),
    Config("grpc_to_ours_pyvoy", "grpc.aio → ours/pyvoy h2c", "grpc", "ours-pyvoy"),
    # Servers apart from clients: connect-go's client, the cheapest load generator here,
    # against every server. Connect over HTTP/1.1 ("go" is connect-go → connect-go) ...
    Config("go_ours_uvicorn", "connect-go → ours/uvicorn", "go", "ours-uvicorn"),
    Config("go_ours_granian", "connect-go → ours/granian", "go", "ours-granian"),
    Config("go_ours_pyvoy", "connect-go → ours/pyvoy", "go", "ours-pyvoy"),
    Config("go_official_uvicorn", "connect-go → official/uvicorn", "go", "official-uvicorn"),
    Config("go_official_granian", "connect-go → official/granian", "go", "official-granian"),
    Config("go_official_pyvoy", "connect-go → official/pyvoy", "go", "official-pyvoy"),
    # ... and gRPC over h2c. Not run: uvicorn (no HTTP/2) and granian (no response trailers).
    Config(
        "gogrpc_ours_hypercorn",
        "connect-go gRPC → ours/hypercorn h2c",
        "go",
        "ours-hypercorn",
        protocol="grpc",
    ),
    Config(
        "gogrpc_ours_pyvoy", "connect-go gRPC → ours/pyvoy", "go", "ours-pyvoy", protocol="grpc"
    ),
    Config(
        "gogrpc_official_pyvoy",
        "connect-go gRPC → official/pyvoy",
        "go",
        "official-pyvoy",
        protocol="grpc",
    ),
    Config("gogrpc_grpc", "connect-go gRPC → grpc.aio", "go", "grpc", protocol="grpc"),
    Config("gogrpc_go", "connect-go gRPC → connect-go h2c", "go", "go", protocol="grpc"),
    # Our HTTP/2 gRPC client against grpc.aio's and connect-go's servers, side by side with
    # grpc.aio's own client (C-core) against the same servers.
    Config("oursgrpc_grpc", "ours gRPC (HTTP2Transport) → grpc.aio", "ours_grpc", "grpc"),
    Config("oursgrpc_go", "ours gRPC (HTTP2Transport) → connect-go h2c", "ours_grpc", "go"),
    Config("grpc_go", "grpc.aio → connect-go h2c", "grpc", "go"),
    # Blocking clients against connect-go's server: ours (SyncHTTP1Transport), the official
    # sync client (pyqwest), grpcio's sync stub (gRPC over h2c).
    Config("sync_ours_go", "ours sync (SyncHTTP1Transport) → connect-go", "ours_sync", "go"),
    Config("sync_official_go", "official sync (pyqwest) → connect-go", "official_sync", "go"),
    Config("sync_grpc_go", "grpcio sync stub → connect-go h2c", "grpc_sync", "go"),
    # The WSGI apps under gunicorn, under connect-go's client (Connect, HTTP/1.1) ...
    Config("go_ours_gthread", "connect-go → ours WSGI/gunicorn gthread", "go", "ours-gthread"),
    Config(
        "go_official_gthread",
        "connect-go → official WSGI/gunicorn gthread",
        "go",
        "official-gthread",
    ),
    Config("go_ours_gsync", "connect-go → ours WSGI/gunicorn sync", "go", "ours-gsync"),
    Config("go_official_gsync", "connect-go → official WSGI/gunicorn sync", "go", "official-gsync"),
    # ... and each blocking client against its own WSGI app, end to end.
    Config("sync_ours_wsgi", "ours sync → ours WSGI/gthread", "ours_sync", "ours-gthread"),
    Config(
        "sync_official_wsgi",
        "official sync → official WSGI/gthread",
        "official_sync",
        "official-gthread",
    ),
]

# The blocking clients and the WSGI apps: what `--sync` runs (results/sync.{md,json}).
SYNC_CONFIGS = [
    "sync_ours_go", "sync_official_go", "sync_grpc_go",
    "go_ours_gthread", "go_official_gthread", "go_ours_gsync", "go_official_gsync",
    "sync_ours_wsgi", "sync_official_wsgi",
]  # fmt: skip

# The sections after the main table: configurations (rows), the (ours, peer) pairs whose
# per-round ratios are reported, the metrics (columns), and the targets
# (metric, op, factor, text) checked for every pair whose peer is ``target_peers``.
MAIN_CONFIGS = [
    "ours", "ours_http1", "ours_hypercorn", "official", "grpc", "go",
    "ours_to_official", "official_to_ours", "raw",
]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Section:
    key: str
    title: str
    notes: tuple[str, ...]
    configs: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    metrics: tuple[str, ...]
    targets: tuple[tuple[str, str, float, str], ...]
    target_peers: tuple[str, ...]


SECTIONS = [
    Section(
        "syncclient",
        "Blocking clients: ours (SyncHTTP1Transport) against the official sync client and grpcio's",
        (
            "Each blocking client calls the same connect-go server from one process: ours is "
            "`ConnectClient` over `SyncHTTP1Transport` (Connect, HTTP/1.1 keep-alive pool), the "
            "official one the generated `BenchServiceClientSync` over pyqwest (Connect, HTTP/1.1), "
            "grpcio's the generated stub on `grpc.insecure_channel` (gRPC over h2c, C-core).",
            "Sequential runs are one thread; 'c=32' is 32 threads sharing one client. Client CPU "
            "is the client process's (all threads: pyqwest and grpcio work on threads of their "
            "own); 'client CPU s / 10k unary' is from the sequential run.",
            "The official client's small-stream rate is bimodal: about 25–35k msgs/s when "
            "pyqwest hands Python one chunk per message (the client keeping up with the "
            "server), about 125–135k when chunks coalesce; a round lands in either, so compare "
            "the per-round values in sync.json before trusting the median ratio.",
        ),
        ("sync_ours_go", "sync_official_go", "sync_grpc_go"),
        (("sync_ours_go", "sync_official_go"), ("sync_ours_go", "sync_grpc_go")),
        (
            "unary_seq_cps",
            "unary_seq_p50",
            "client_cpu_10k",
            "unary_c32_cps",
            "client_us_c32",
            "stream_small",
            "stream_large",
            "upload_small",
        ),
        (
            ("unary_seq_cps", ">=", 1.5, "sequential unary ≥ 1.5× the official sync client"),
            ("stream_small", ">=", 5.0, "small server stream ≥ 5× the official sync client"),
            ("client_cpu_10k", "<=", 0.7, "client CPU per 10k unary ≤ 0.7× the official's"),
        ),
        ("sync_official_go",),
    ),
    Section(
        "wsgi",
        "WSGI apps under gunicorn: ours against the official one",
        (
            "Both apps run under gunicorn with the same settings: one worker, `gthread` with 4 "
            "threads (keep-alive), or `sync` (one request at a time, a connection per request); "
            "the load comes from connect-go's client (Connect, HTTP/1.1, a connection per "
            "concurrent call). Server CPU counts gunicorn's master and worker.",
            "Server CPU per call from the sequential and the concurrency-32 runs; per message "
            "for the small server stream. The last rows are each blocking client against its "
            "own WSGI app (gthread), end to end.",
        ),
        (
            "go_ours_gthread",
            "go_official_gthread",
            "go_ours_gsync",
            "go_official_gsync",
            "sync_ours_wsgi",
            "sync_official_wsgi",
        ),
        (
            ("go_ours_gthread", "go_official_gthread"),
            ("go_ours_gsync", "go_official_gsync"),
            ("sync_ours_wsgi", "sync_official_wsgi"),
        ),
        (
            "unary_seq_cps",
            "unary_c32_cps",
            "server_us_seq",
            "server_us_c32",
            "stream_small",
            "server_us_msg_small",
            "stream_large",
            "upload_small",
        ),
        (),
        (),
    ),
    Section(
        "h2client",
        "Our HTTP/2 gRPC client against grpc.aio's client (C-core)",
        (
            "Each client calls the same server over HTTP/2 cleartext: grpc.aio's server, and "
            "connect-go's. Our client is `ClientOptions(protocol='grpc')` over `HTTP2Transport`, "
            "every call multiplexed on one connection, as grpc.aio's channel does.",
            "Client CPU per call from the sequential run: 'CPU per 10k unary' is this × 10,000.",
        ),
        ("grpc", "oursgrpc_grpc", "grpc_go", "oursgrpc_go"),
        (("oursgrpc_grpc", "grpc"), ("oursgrpc_go", "grpc_go")),
        (
            "unary_seq_cps",
            "unary_c32_cps",
            "stream_small",
            "stream_large",
            "upload_small",
            "client_us_seq",
            "client_us_c32",
        ),
        (
            ("unary_seq_cps", ">=", 1.0, "sequential unary ≥ 1.0× grpc.aio's client"),
            ("unary_c32_cps", ">=", 1.0, "unary c=32 ≥ 1.0× grpc.aio's client"),
            ("stream_small", ">=", 5.0, "small server stream ≥ 5× grpc.aio's client"),
            ("upload_small", ">=", 5.0, "small client stream ≥ 5× grpc.aio's client"),
            ("stream_large", ">=", 1.0, "1 MiB server stream ≥ 1.0× grpc.aio's client"),
            ("client_us_seq", "<=", 0.8, "client CPU per 10k unary ≤ 0.8× grpc.aio's"),
        ),
        ("grpc", "grpc_go"),
    ),
    Section(
        "grpc",
        "gRPC: grpc.aio's client → our app over h2c, and → grpc.aio's server",
        (
            "The same grpc.aio client process (its own venv) calls each server over HTTP/2 "
            "cleartext. Our app runs on hypercorn (with `patch_hypercorn_h2()`) and on pyvoy; "
            "uvicorn has no HTTP/2 and granian no response trailers, so neither can serve gRPC.",
            "CPU per call: server = the server's whole process tree, client = the client "
            "process; from the concurrency-32 run.",
        ),
        ("grpc", "grpc_to_ours_hypercorn", "grpc_to_ours_pyvoy"),
        (("grpc_to_ours_hypercorn", "grpc"), ("grpc_to_ours_pyvoy", "grpc")),
        (
            "unary_seq_cps",
            "unary_seq_p50",
            "unary_c32_cps",
            "stream_small",
            "stream_large",
            "upload_small",
            "server_us_c32",
            "client_us_c32",
        ),
        (
            ("unary_seq_cps", ">=", 1.0, "sequential unary ≥ 1.0× grpc.aio server"),
            ("unary_c32_cps", ">=", 1.0, "unary c=32 ≥ 1.0× grpc.aio server"),
            ("stream_small", ">=", 5.0, "small server stream ≥ 5× grpc.aio server"),
        ),
        ("grpc",),
    ),
    Section(
        "servers",
        "Servers under a connect-go client",
        (
            "connect-go's client (Go, the cheapest load generator here) against every server, "
            "so that server differences do not hide behind client cost. Connect over HTTP/1.1 "
            "(a connection per concurrent call); gRPC over HTTP/2 cleartext (calls multiplexed "
            "on one connection). 'connect-go → connect-go' is the Connect row of the main table.",
            "Server CPU per call counts the server's whole process tree (granian's worker, "
            "pyvoy's Envoy); client CPU per call is the Go client's. The machine has 2 cores, "
            "which client and server share.",
            "Not run: gRPC on uvicorn (no HTTP/2) and on granian (its ASGI server sends no "
            "response trailers); gRPC on hypercorn for the official app (not installed in its "
            "venv; our hypercorn row needs our `patch_hypercorn_h2()`).",
        ),
        (
            "go_ours_uvicorn",
            "go_official_uvicorn",
            "go_ours_granian",
            "go_official_granian",
            "go_ours_pyvoy",
            "go_official_pyvoy",
            "go",
            "gogrpc_ours_hypercorn",
            "gogrpc_ours_pyvoy",
            "gogrpc_official_pyvoy",
            "gogrpc_grpc",
            "gogrpc_go",
        ),
        (
            ("go_ours_uvicorn", "go_official_uvicorn"),
            ("go_ours_granian", "go_official_granian"),
            ("go_ours_pyvoy", "go_official_pyvoy"),
            ("gogrpc_ours_pyvoy", "gogrpc_official_pyvoy"),
            ("go_ours_uvicorn", "go"),
            ("gogrpc_ours_hypercorn", "gogrpc_grpc"),
            ("gogrpc_ours_pyvoy", "gogrpc_grpc"),
            ("gogrpc_ours_pyvoy", "gogrpc_go"),
        ),
        (
            "unary_seq_cps",
            "unary_c32_cps",
            "server_us_seq",
            "server_us_c32",
            "client_us_c32",
            "stream_small",
            "stream_large",
            "upload_small",
        ),
        (
            ("unary_c32_cps", ">=", 1.5, "unary c=32 throughput ≥ 1.5× official"),
            ("server_us_c32", "<=", 0.7, "server CPU per call (c=32) ≤ 0.7× official"),
        ),
        (
            "go_official_uvicorn",
            "go_official_granian",
            "go_official_pyvoy",
            "gogrpc_official_pyvoy",
        ),
    ),
]


def config_label(name: str) -> str:
    return next((c.label for c in CONFIGS if c.name == name), name)


# Our configurations (our client with each transport, against our server), and the peers
# each is compared with. Ratio keys are "<ours>/<peer>".
OURS = [("ours", "ours"), ("ours_http1", "ours-h1")]
PEER_RATIOS = [("official", "official"), ("grpc", "grpc.aio"), ("go", "connect-go")]


def ratio_pairs(names: list[str]) -> list[tuple[str, str, str]]:
    """``(key, ours, peer)`` for every (our config, peer) pair present in ``names``."""
    return [
        (f"{mine}/{peer}", mine, peer)
        for mine, _ in OURS
        for peer, _ in PEER_RATIOS
        if mine in names and peer in names
    ]


def ratio_label(key: str) -> str:
    mine, peer = key.split("/")
    return f"{dict(OURS)[mine]} ÷ {dict(PEER_RATIOS)[peer]}"


def workloads(quick: bool) -> list[dict[str, Any]]:
    if quick:
        return [
            {
                "name": "unary_seq",
                "kind": "unary_seq",
                "max_calls": 2000,
                "max_seconds": 0.7,
                "warmup": 100,
                "timeout": 30,
            },
            {
                "name": "unary_c32",
                "kind": "unary_conc",
                "concurrency": 32,
                "max_calls": 50000,
                "max_seconds": 0.7,
                "warmup": 100,
                "timeout": 30,
            },
            {"name": "stream_small", "kind": "download", "count": 2000, "size": 64, "timeout": 30},
            {
                "name": "stream_large",
                "kind": "download",
                "count": 10,
                "size": 1 << 20,
                "timeout": 30,
            },
            {"name": "upload_small", "kind": "upload", "count": 2000, "size": 64, "timeout": 30},
        ]
    return [
        {
            "name": "unary_seq",
            "kind": "unary_seq",
            "max_calls": 10000,
            "max_seconds": 3.0,
            "warmup": 300,
            "timeout": 60,
        },
        {
            "name": "unary_c32",
            "kind": "unary_conc",
            "concurrency": 32,
            "max_calls": 500000,
            "max_seconds": 2.5,
            "warmup": 300,
            "timeout": 60,
        },
        {"name": "stream_small", "kind": "download", "count": 20000, "size": 64, "timeout": 60},
        {"name": "stream_large", "kind": "download", "count": 100, "size": 1 << 20, "timeout": 60},
        {"name": "upload_small", "kind": "upload", "count": 20000, "size": 64, "timeout": 60},
    ]


# Metric id -> (label, workload, unit, higher_is_better)
METRICS = {
    "unary_seq_cps": ("Unary sequential, 16 B", "unary_seq", "calls/s", True),
    "unary_seq_p50": ("Unary sequential p50", "unary_seq", "µs", False),
    "unary_seq_p99": ("Unary sequential p99", "unary_seq", "µs", False),
    "unary_c32_cps": ("Unary concurrency 32", "unary_c32", "calls/s", True),
    "stream_small": ("Server stream 20k × 64 B", "stream_small", "msgs/s", True),
    "stream_large": ("Server stream 100 × 1 MiB", "stream_large", "MB/s", True),
    "upload_small": ("Client stream 20k × 64 B", "upload_small", "msgs/s", True),
    "cpu_10k": ("CPU s / 10k unary (client+server)", "unary_seq", "s", False),
}
# Further metrics, shown in the sections after the main table.
EXTRA_METRICS = {
    "server_us_seq": ("Server CPU / call, sequential", "unary_seq", "µs", False),
    "client_us_seq": ("Client CPU / call, sequential", "unary_seq", "µs", False),
    "server_us_c32": ("Server CPU / call, c=32", "unary_c32", "µs", False),
    "client_us_c32": ("Client CPU / call, c=32", "unary_c32", "µs", False),
    "client_cpu_10k": ("Client CPU s / 10k unary", "unary_seq", "s", False),
    "server_us_msg_small": ("Server CPU / msg, small stream", "stream_small", "µs", False),
}
ALL_METRICS = {**METRICS, **EXTRA_METRICS}

TARGETS = [
    # (metric, peer config, op, factor, text)
    ("unary_seq_cps", "official", ">=", 1.5, "sequential unary ≥ 1.5× official"),
    ("unary_seq_cps", "grpc", ">=", 1.5, "sequential unary ≥ 1.5× grpc.aio"),
    ("unary_c32_cps", "official", ">=", 1.5, "unary c=32 ≥ 1.5× official"),
    ("unary_c32_cps", "grpc", ">=", 1.5, "unary c=32 ≥ 1.5× grpc.aio"),
    ("stream_small", "official", ">=", 5.0, "small server stream ≥ 5× official"),
    ("upload_small", "official", ">=", 5.0, "small client stream ≥ 5× official"),
    ("stream_large", "grpc", ">=", 1.0, "large server stream ≥ grpc.aio"),
    ("cpu_10k", "official", "<=", 0.7, "CPU per 10k unary ≤ 0.7× official"),
]


def metric_value(metric: str, results: dict[str, dict[str, Any]]) -> float | None:
    _, wl, _, _ = ALL_METRICS[metric]
    r = results.get(wl)
    if not r or r.get("event") != "result":
        return None
    secs = r["seconds"]
    if metric == "unary_seq_cps" or metric == "unary_c32_cps":
        return r["calls"] / secs
    if metric == "unary_seq_p50":
        return r["p50_us"]
    if metric == "unary_seq_p99":
        return r["p99_us"]
    if metric in ("stream_small", "upload_small"):
        return r["msgs"] / secs
    if metric == "stream_large":
        return r["bytes"] / secs / 1e6
    if metric == "cpu_10k":
        if r.get("server_cpu_s") is None:
            return None
        return (r["client_cpu_s"] + r["server_cpu_s"]) / r["calls"] * 10000
    if metric in ("server_us_seq", "server_us_c32"):
        if r.get("server_cpu_s") is None or not r["calls"]:
            return None
        return r["server_cpu_s"] / r["calls"] * 1e6
    if metric in ("client_us_seq", "client_us_c32"):
        return r["client_cpu_s"] / r["calls"] * 1e6 if r["calls"] else None
    if metric == "client_cpu_10k":
        return r["client_cpu_s"] / r["calls"] * 10000 if r["calls"] else None
    if metric == "server_us_msg_small":
        if r.get("server_cpu_s") is None or not r["msgs"]:
            return None
        return r["server_cpu_s"] / r["msgs"] * 1e6
    raise KeyError(metric)


# --- processes --------------------------------------------------------------------------


def python_of(venv: str) -> str:
    return str(VENVS / venv / "bin" / "python")


# Clients that run in our venv with our generated code.
_OUR_CLIENTS = ("raw", "ours_http1", "ours_grpc", "ours_sync")
# The blocking clients of the other peers, in those peers' venvs.
_PEER_SYNC_CLIENTS = {"official_sync": "official", "grpc_sync": "grpc"}


def client_venv(client: str) -> str:
    """The venv (and generated code, under .gen/) a Python client runs with."""
    if client in _OUR_CLIENTS:
        return "ours"
    return _PEER_SYNC_CLIENTS.get(client, client)


def gen_path(impl: str) -> str:
    return str(GEN / client_venv(impl))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start in {timeout}s")


def wait_http(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Waits until an HTTP/1.1 request gets an answer: granian's parent process listens
    before its worker is up, and pyvoy's Envoy before its Python app is loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            if s.recv(1):
                return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not answer HTTP in {timeout}s")


def proc_cpu(pid: int) -> float | None:
    """User plus system CPU seconds of a process (all its threads), from /proc/<pid>/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree_cpu(pid: int) -> float | None:
    """CPU seconds of a process and all its live descendants (granian's worker process,
    pyvoy's Envoy). Descendants are found through the parent ids in /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    own = proc_cpu(pid)
    if own is None:
        return None
    total, todo = own, list(children.get(pid, []))
    while todo:
        child = todo.pop()
        total += proc_cpu(child) or 0.0
        todo += children.get(child, [])
    return total


class RunningServer:
    def __init__(self, server: Server, log_dir: Path, wrap: list[str] | None = None) -> None:
        self.server = server
        self.port = free_port()
        if server.venv is None:
            cmd = [str(GO_BIN), "server", "-addr", f"127.0.0.1:{self.port}"]
            env = dict(os.environ)
        else:
            cmd = [
                python_of(server.venv),
                str(PEERS / "server.py"),
                *server.args,
                "--port",
                str(self.port),
            ]
            env = dict(os.environ, PYTHONPATH=gen_path(server.venv))
        if wrap:
            cmd = [*wrap, *cmd]
        self.log = open(log_dir / f"server-{server.key}.log", "wb")  # noqa: SIM115
        # Its own process group, so that stop() can end the children it started too.
        self.proc = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            wait_port(self.port, self.proc)
            if {"granian", "pyvoy", "gthread", "gsync"} & set(server.args):
                wait_http(self.port, self.proc)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT: lets profilers write their output
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        # Children left behind (granian's worker, pyvoy's Envoy), in the group we started.
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, 9)
        self.log.close()


def client_cmd(config: Config, url: str, spec: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    if config.client == "go":
        cmd = [str(GO_BIN), "client", "-url", url, "-protocol", config.protocol]
        return [*cmd, "-spec", json.dumps(spec)], dict(os.environ)
    venv = client_venv(config.client)
    cmd = [
        python_of(venv),
        str(PEERS / "client.py"),
        "--impl",
        config.client,
        "--url",
        url,
        "--spec",
        json.dumps(spec),
    ]
    return cmd, dict(os.environ, PYTHONPATH=gen_path(config.client))


def run_client(
    config: Config,
    server: RunningServer,
    spec: dict[str, Any],
    log_dir: Path,
    progress: Progress,
    wrap: list[str] | None = None,
    cpu_pid: int | None = None,
    on_ready: Any = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Runs one client process through its workloads; returns results by workload."""
    cmd, env = client_cmd(config, f"http://127.0.0.1:{server.port}", spec)
    if wrap:
        cmd = [*wrap, *cmd]
    budget = sum(w["timeout"] for w in spec["workloads"]) + 30
    deadline = time.monotonic() + budget
    results: dict[str, dict[str, Any]] = {}
    versions: dict[str, str] = {}
    server_pid = cpu_pid or server.pid
    with open(log_dir / f"client-{config.name}.log", "ab") as err:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        cpu0: float | None = None
        buf = b""
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"client {config.name} exceeded {budget}s")
                ready, _, _ = select.select([proc.stdout], [], [], min(remaining, 1.0))
                if not ready:
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if not line.startswith(b"{"):
                        continue  # not ours (a profiler wrapping the client may print)
                    event = json.loads(line)
                    kind = event.get("event")
                    if kind == "ready":
                        progress.step(config, event["workload"])
                        if on_ready is not None:
                            on_ready(proc.pid)
                        cpu0 = tree_cpu(server_pid)
                        proc.stdin.write(b"go\n")
                        proc.stdin.flush()
                    elif kind in ("result", "error"):
                        cpu1 = tree_cpu(server_pid)
                        if kind == "result":
                            event["server_cpu_s"] = (
                                None if cpu0 is None or cpu1 is None else cpu1 - cpu0
                            )
                        results[event["workload"]] = event
                        cpu0 = None
                    elif kind == "done":
                        versions = event.get("versions", {})
        except (TimeoutError, json.JSONDecodeError) as exc:
            progress.note(f"{config.name}: {exc}")
        finally:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
    for w in spec["workloads"]:
        results.setdefault(
            w["name"], {"event": "error", "error": "no result (client failed; see log)"}
        )
    return results, versions


class Progress:
    def __init__(self, total_runs: int, per_run: int) -> None:
        self.total = total_runs * per_run
        self.done = 0
        self.t0 = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.round = ""

    def step(self, config: Config, workload: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.t0
        eta = elapsed / max(1, self.done - 1) * (self.total - self.done + 1) if self.done > 1 else 0
        pct = 100 * (self.done - 1) / self.total
        bar = "#" * int(pct / 5) + "." * (20 - int(pct / 5))
        msg = f"[{bar}] {pct:5.1f}% {self.round} {config.label[:38]:38} {workload:13} {elapsed:5.0f}s elapsed, ~{eta:4.0f}s left"
        if self.tty:
            sys.stderr.write("\r\033[K" + msg)
        else:
            sys.stderr.write(msg + "\n")
        sys.stderr.flush()

    def note(self, text: str) -> None:
        sys.stderr.write(("\r\033[K" if self.tty else "") + text + "\n")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K")
        sys.stderr.write(f"done in {time.monotonic() - self.t0:.0f}s\n")


# --- reporting --------------------------------------------------------------------------


def summarize(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "—"
    if unit == "s":
        return f"{v:.2f}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell(s: dict[str, float] | None, unit: str = "", ratio: bool = False) -> str:
    if s is None:
        return "—"
    if ratio:
        return f"{s['median']:.2f}× ({s['min']:.2f}–{s['max']:.2f})"
    return f"{fmt(s['median'], unit)} ({fmt(s['min'], unit)}–{fmt(s['max'], unit)})"


def build_summary(
    rounds: list[dict[str, dict[str, dict[str, Any]]]], configs: list[Config]
) -> dict[str, Any]:
    summary: dict[str, Any] = {"metrics": {}, "ratios": {}, "targets": []}
    names = [c.name for c in configs]
    pairs = ratio_pairs(names) + [
        (f"{mine}/{peer}", mine, peer)
        for section in SECTIONS
        for mine, peer in section.pairs
        if mine in names and peer in names
    ]
    for metric in ALL_METRICS:
        per_config = {}
        for name in names:
            vals = [v for r in rounds if (v := metric_value(metric, r.get(name, {}))) is not None]
            per_config[name] = summarize(vals)
        summary["metrics"][metric] = per_config
        ratios = {}
        for key, mine, peer in pairs:
            vals = []
            for r in rounds:
                a = metric_value(metric, r.get(mine, {}))
                b = metric_value(metric, r.get(peer, {}))
                if a is not None and b:
                    vals.append(a / b)
            ratios[key] = summarize(vals)
        summary["ratios"][metric] = ratios
    for mine, mine_label in OURS:
        if mine not in names:
            continue
        for metric, peer, op, factor, text in TARGETS:
            s = summary["ratios"].get(metric, {}).get(f"{mine}/{peer}")
            if s is None:
                status = "n/a"
            else:
                ok = s["median"] >= factor if op == ">=" else s["median"] <= factor
                status = "met" if ok else "missed"
            summary["targets"].append(
                {
                    "section": "main",
                    "target": f"{mine_label}: {text}",
                    "metric": metric,
                    "peer": peer,
                    "ours": mine,
                    "ratio": s["median"] if s else None,
                    "status": status,
                }
            )
    for section in SECTIONS:
        for mine, peer in section.pairs:
            if peer not in section.target_peers or mine not in names or peer not in names:
                continue
            for metric, op, factor, text in section.targets:
                s = summary["ratios"].get(metric, {}).get(f"{mine}/{peer}")
                if s is None:
                    status = "n/a"
                else:
                    ok = s["median"] >= factor if op == ">=" else s["median"] <= factor
                    status = "met" if ok else "missed"
                summary["targets"].append(
                    {
                        "section": section.key,
                        "target": f"{config_label(mine)} vs {config_label(peer)}: {text}",
                        "metric": metric,
                        "peer": peer,
                        "ours": mine,
                        "ratio": s["median"] if s else None,
                        "status": status,
                    }
                )
    return summary


def section_tables(summary: dict[str, Any], section: Section, names: list[str]) -> list[str]:
    """Markdown tables of one section: configurations by metrics, then ratios, then targets."""
    rows = [n for n in section.configs if n in names]
    if not rows:
        return []
    lines = [f"## {section.title}", ""]
    lines += [f"- {note}" for note in section.notes]
    lines.append("")
    head = [
        "Configuration",
        *(f"{ALL_METRICS[m][0]} ({ALL_METRICS[m][2]})" for m in section.metrics),
    ]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for name in rows:
        cells = [cell(summary["metrics"][m].get(name), ALL_METRICS[m][2]) for m in section.metrics]
        lines.append("| " + " | ".join([config_label(name), *cells]) + " |")
    pairs = [(a, b) for a, b in section.pairs if a in names and b in names]
    if pairs:
        lines += [
            "",
            "Ratios (median and min–max of per-round ratios; for CPU lower is better):",
            "",
        ]
        lines.append("| " + " | ".join(["Ratio", *head[1:]]) + " |")
        lines.append("|" + "---|" * len(head))
        for a, b in pairs:
            cells = [
                cell(summary["ratios"][m].get(f"{a}/{b}"), ratio=True) for m in section.metrics
            ]
            label = f"{config_label(a)} ÷ {config_label(b)}"
            lines.append("| " + " | ".join([label, *cells]) + " |")
    targets = [t for t in summary["targets"] if t.get("section") == section.key]
    if targets:
        lines += ["", "| Target | Ratio | Status |", "|---|---|---|"]
        for t in targets:
            ratio = "—" if t["ratio"] is None else f"{t['ratio']:.2f}×"
            lines.append(f"| {t['target']} | {ratio} | {t['status']} |")
    lines.append("")
    return lines


def markdown(meta: dict[str, Any], summary: dict[str, Any], configs: list[Config]) -> str:
    lines = [
        f"# connect-python benchmark ({meta['mode']}, {meta['rounds']} rounds)",
        "",
        f"- Date: {meta['date']}; git {meta['git']}",
        f"- CPU: {meta['cpu']} ({meta['nproc']} cores); Python {meta['python']}; {meta['platform']}",
        f"- Load average before/after: {meta['load_before']} / {meta['load_after']}; "
        f"after each round: {' | '.join(meta.get('load_per_round', []))} (other jobs share this machine)",
        f"- Run time: {meta['seconds']:.0f} s",
        "- Loopback HTTP/1.1 for every Connect peer; HTTP/2 cleartext (h2c) for gRPC, as gRPC "
        "requires; stdlib asyncio loop; uvicorn with httptools; compression off everywhere.",
        "- Cells: median (min–max) over rounds. Ratios are ours (our client with aiohttp or "
        "with HTTP1Transport, against our server on uvicorn) ÷ peer, "
        "computed within each round; for latency and CPU lower is better.",
        "",
        "## Versions",
        "",
    ]
    for k, v in sorted(meta["versions"].items()):
        lines.append(f"- {k}: {v}")
    names = [c.name for c in configs]
    configs = [c for c in configs if c.name in MAIN_CONFIGS]
    if not configs:  # only section configurations were run (--sync, --only ...)
        lines.append("")
        for section in SECTIONS:
            lines += section_tables(summary, section, names)
        if meta.get("errors"):
            lines += ["", "## Errors", ""]
            lines += [f"- {e}" for e in meta["errors"][:30]]
        lines.append("")
        return "\n".join(lines)
    lines += ["", "## Results", ""]
    header = ["Metric", "Unit", *[c.label for c in configs]]
    keys = [key for key, _, _ in ratio_pairs([c.name for c in configs])]
    header += [ratio_label(key) for key in keys]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for metric, (label, _, unit, _better) in METRICS.items():
        row = [label, unit]
        row += [cell(summary["metrics"][metric].get(c.name), unit) for c in configs]
        row += [cell(summary["ratios"][metric].get(key), ratio=True) for key in keys]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## Targets (median of per-round ratios)", ""]
    lines.append("| Target | Ratio | Status |")
    lines.append("|---|---|---|")
    for t in summary["targets"]:
        if t.get("section", "main") != "main":
            continue
        ratio = "—" if t["ratio"] is None else f"{t['ratio']:.2f}×"
        lines.append(f"| {t['target']} | {ratio} | {t['status']} |")
    lines.append("")
    for section in SECTIONS:
        lines += section_tables(summary, section, names)
    if meta.get("errors"):
        lines += ["", "## Errors", ""]
        lines += [f"- {e}" for e in meta["errors"][:30]]
    lines.append("")
    return "\n".join(lines)


def terminal_table(summary: dict[str, Any], configs: list[Config]) -> str:
    """Compact plain-text tables: for the main configurations, metrics down and
    configurations across; for the other sections, configurations and ratios down."""
    names = [c.name for c in configs]
    cols = [n for n in names if n in MAIN_CONFIGS]
    ratio_cols = [key for key, _, _ in ratio_pairs(cols)]
    head = ["metric", *cols, *ratio_cols]
    rows = [head]
    for metric, (_label, _, unit, _) in METRICS.items():
        row = [f"{metric} ({unit})"]
        for c in cols:
            s = summary["metrics"][metric].get(c)
            row.append(
                "—"
                if s is None
                else f"{fmt(s['median'], unit)} [{fmt(s['min'], unit)}-{fmt(s['max'], unit)}]"
            )
        for p in ratio_cols:
            s = summary["ratios"][metric].get(p)
            row.append("—" if s is None else f"{s['median']:.2f}x [{s['min']:.2f}-{s['max']:.2f}]")
        rows.append(row)
    out = _columns(rows) if cols else []
    for section in SECTIONS:
        pairs = [f"{a}/{b}" for a, b in section.pairs if a in names and b in names]
        srows = [["", *section.metrics]]
        for n in [n for n in section.configs if n in names]:
            cells = []
            for m in section.metrics:
                s = summary["metrics"][m].get(n)
                cells.append("—" if s is None else fmt(s["median"], ALL_METRICS[m][2]))
            srows.append([n, *cells])
        for p in pairs:
            cells = []
            for m in section.metrics:
                s = summary["ratios"][m].get(p)
                cells.append("—" if s is None else f"{s['median']:.2f}x")
            srows.append([p, *cells])
        if len(srows) > 1:
            out += ["", f"{section.title}:", *_columns(srows)]
    out.append("")
    for t in summary["targets"]:
        ratio = "—" if t["ratio"] is None else f"{t['ratio']:.2f}x"
        out.append(f"  [{t['status']:6}] {t['target']}: {ratio}")
    return "\n".join(out)


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(r[i].ljust(widths[i]) for i in range(len(r))) for r in rows]


def machine_meta() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    git = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        rev = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "connectrpc"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        git = rev + (" (connectrpc/ modified)" if dirty else "")
    return {
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "git": git,
        "python": subprocess.run(
            [python_of("ours"), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 short rounds")
    parser.add_argument("--rounds", type=int, help="rounds (default 5, quick 2)")
    parser.add_argument(
        "--only", help="comma-separated configuration names: " + ",".join(c.name for c in CONFIGS)
    )
    parser.add_argument("--out", default=str(RESULTS), help="directory for latest.md / latest.json")
    parser.add_argument(
        "--sync",
        action="store_true",
        help="only the blocking clients and the WSGI apps, into sync.md / sync.json",
    )
    args = parser.parse_args()
    basename = "latest"
    if args.sync:
        basename = "sync"
        if not args.only:
            args.only = ",".join(SYNC_CONFIGS)

    missing = [
        p
        for p in [GO_BIN, *(VENVS / v / "bin" / "python" for v in ("ours", "official", "grpc"))]
        if not p.exists()
    ]
    if missing:
        print(f"missing {missing[0]}: run benchmarks/setup.sh first", file=sys.stderr)
        return 2
    configs = CONFIGS
    if args.only:
        wanted = args.only.split(",")
        configs = [c for c in CONFIGS if c.name in wanted]
        if not configs:
            print(f"no configuration among {wanted}", file=sys.stderr)
            return 2
    rounds_n = args.rounds or (2 if args.quick else 5)
    spec = {"workloads": workloads(args.quick)}
    out_dir = Path(args.out)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    log_dir = RESULTS / "runs" / stamp
    log_dir.mkdir(parents=True, exist_ok=True)

    meta: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "rounds": rounds_n,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "workloads": spec["workloads"],
        **machine_meta(),
    }
    needed = {c.server for c in configs}
    servers: dict[str, RunningServer] = {}
    progress = Progress(rounds_n * len(configs), len(spec["workloads"]))
    rounds: list[dict[str, dict[str, dict[str, Any]]]] = []
    versions: dict[str, str] = {}
    errors: list[str] = []
    t0 = time.monotonic()
    try:
        for s in SERVERS:
            if s.key in needed:
                servers[s.key] = RunningServer(s, log_dir)
        for r in range(rounds_n):
            progress.round = f"round {r + 1}/{rounds_n}"
            order = configs[r % len(configs) :] + configs[: r % len(configs)]
            this_round: dict[str, dict[str, dict[str, Any]]] = {}
            for config in order:
                res, ver = run_client(config, servers[config.server], spec, log_dir, progress)
                this_round[config.name] = res
                for k, v in ver.items():
                    key = {
                        "connect-python": "ours (connect-python)",
                        "connectrpc": "official connectrpc (PyPI)",
                        "go": "connect-go",
                    }.get(k, k)
                    versions[key] = v
                for wl, e in res.items():
                    if e.get("event") == "error":
                        errors.append(f"round {r + 1} {config.name} {wl}: {e.get('error')}")
            this_round["_load"] = {"loadavg": list(os.getloadavg())}  # type: ignore[dict-item]
            rounds.append(this_round)
    finally:
        for s in servers.values():
            s.stop()
        progress.finish()
    meta["seconds"] = time.monotonic() - t0
    meta["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    meta["versions"] = versions
    meta["errors"] = errors
    with contextlib.suppress(Exception):
        for dist in ("uvicorn", "hypercorn", "httptools", "granian", "pyvoy", "gunicorn"):
            meta["versions"][dist] = subprocess.run(
                [
                    python_of("ours"),
                    "-c",
                    f"from importlib.metadata import version; print(version({dist!r}))",
                ],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.strip()
    meta["load_per_round"] = [" ".join(f"{x:.2f}" for x in r["_load"]["loadavg"]) for r in rounds]  # type: ignore[index]
    summary = build_summary(rounds, configs)
    doc = {
        "meta": meta,
        "configs": [dataclasses.asdict(c) for c in configs],
        "metrics": {
            k: {"label": v[0], "unit": v[2], "higher_is_better": v[3]}
            for k, v in ALL_METRICS.items()
        },
        "sections": [dataclasses.asdict(s) for s in SECTIONS],
        "summary": summary,
        "rounds": rounds,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    md = markdown(meta, summary, configs)
    (out_dir / f"{basename}.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out_dir / f"{basename}.md").write_text(md)
    shutil.copy(out_dir / f"{basename}.json", log_dir / "result.json")
    print(terminal_table(summary, configs))
    print(
        f"\nwrote {out_dir / (basename + '.md')} and {out_dir / (basename + '.json')}; "
        f"logs in {log_dir}"
    )
    if errors:
        print(f"{len(errors)} workload error(s); first: {errors[0]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
