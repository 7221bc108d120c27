"""A connect-go client calling the Eliza server over gRPC, gRPC-Web and Connect.

The client is the Go program in ``tests/interop/go``: it calls every RPC kind (Converse
full-duplex) and a Say that fails with a detail, over HTTP/2 cleartext, and prints one JSON
object per result, which the test compares exactly with what Eliza says.

The program is built once per session into a cache directory
(``$XDG_CACHE_HOME/connect-python/interop-go``, else ``~/.cache/...``), keyed by a hash of
its sources, go.sum, the proto, the plugin versions and the Go version; a rebuild happens only
when one of them changes. Its code is generated at build time with protoc-gen-go and
protoc-gen-connect-go (``go install``) through ``grpc_tools.protoc``. Only the first build
needs the Go module proxy; afterwards the module cache suffices. Without Go the test fails.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from eliza_demo import start_server, stop_server
from eliza_engine import Eliza, introduction
from google.protobuf import wrappers_pb2

REPO = Path(__file__).resolve().parents[2]
GO_MODULE = REPO / "tests" / "interop" / "go"
PROTO_ROOT = REPO / "examples" / "proto"
PROTO = "eliza/v1/eliza.proto"
SEED = 1966
ELIZA_VERSION = {"eliza-version": "1966.1"}

# The code generators, from the Go module proxy; the same versions as benchmarks/setup.sh.
PLUGINS = (
    "google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12",
    "connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.21.1",
)
GO_PACKAGE = "elizainterop/gen"
BUILD_TIMEOUT = 900.0  # the first build downloads modules
RUN_TIMEOUT = 60.0


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "connect-python" / "interop-go"


def _run(args: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            args,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"building the connect-go client: {args} timed out")
    if done.returncode != 0:
        pytest.fail(
            f"building the connect-go client: {' '.join(args)} exited with {done.returncode}\n"
            f"{done.stdout}{done.stderr}"
        )
    return done.stdout


def _sources() -> list[Path]:
    return sorted([GO_MODULE / "go.mod", GO_MODULE / "go.sum", *GO_MODULE.glob("*.go")])


def _build_key(go: str) -> str:
    digest = hashlib.sha256()
    digest.update(_run([go, "version"]).encode())
    for plugin in PLUGINS:
        digest.update(plugin.encode() + b"\0")
    for path in [*_sources(), PROTO_ROOT / PROTO]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _build(go: str, staging: Path, binary: Path) -> None:
    """Generate the code and build the client in ``staging``, then move it to ``binary``."""
    env = dict(os.environ)
    gobin = staging / "gobin"
    for plugin in PLUGINS:
        _run([go, "install", plugin], env={**env, "GOBIN": str(gobin)})
    src = staging / "src"
    (src / "gen").mkdir(parents=True)
    for path in _sources():
        shutil.copy2(path, src / path.name)
    options = f"module={GO_PACKAGE},M{PROTO}={GO_PACKAGE}/elizav1"
    _run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"--go_out={src / 'gen'}",
            f"--go_opt={options}",
            f"--connect-go_out={src / 'gen'}",
            f"--connect-go_opt={options}",
            PROTO,
        ],
        env={**env, "PATH": f"{gobin}{os.pathsep}{env.get('PATH', '')}"},
    )
    # -mod=readonly: go.sum must already pin every module (no silent updates).
    output = staging / "elizainterop"
    _run([go, "build", "-mod=readonly", "-trimpath", "-o", str(output), "."], cwd=src, env=env)
    os.replace(output, binary)  # atomic: concurrent sessions never see half a binary


@pytest.fixture(scope="session")
def go_client() -> Path:
    """The built connect-go client, from the cache when its inputs have not changed."""
    go = shutil.which("go")
    if go is None:
        pytest.fail(
            "Go is not installed, and the connect-go interop client needs it: install Go 1.26 "
            "or newer (https://go.dev/dl/) and put `go` on PATH"
        )
    cache = _cache_dir()
    binary = cache / f"elizainterop-{_build_key(go)}"
    if not binary.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="build-", dir=cache) as staging:
            _build(go, Path(staging), binary)
    return binary


@pytest.fixture
async def eliza_url() -> AsyncIterator[str]:
    process, url = await start_server("--seed", str(SEED))
    try:
        yield url
    finally:
        assert await stop_server(process) == 0


def _expected(protocol: str) -> list[dict[str, object]]:
    hint = wrappers_pb2.StringValue(value="SayRequest.sentence").SerializeToString()
    conversation = Eliza(SEED)
    results: list[dict[str, object]] = [
        {"rpc": "Say", "sentence": Eliza(SEED).reply("I am sad"), "headers": ELIZA_VERSION}
    ]
    if protocol == "connect":
        results.append(
            {
                "rpc": "SayGet",
                "http_method": "GET",
                "sentence": Eliza(SEED).reply("I need a holiday"),
                "headers": ELIZA_VERSION,
            }
        )
    results += [
        {"rpc": "Introduce", "sentences": introduction("Ada"), "headers": ELIZA_VERSION},
        {
            "rpc": "Pontificate",
            "sentence": Eliza(SEED).reply_to_monologue(["Hi.", "I am sad."]),
            "headers": ELIZA_VERSION,
            "trailers": {"eliza-heard": "2"},
        },
        {
            "rpc": "Converse",
            "sentences": [conversation.reply(s) for s in ("Hello", "I need a holiday", "Goodbye")],
            "headers": ELIZA_VERSION,
            "trailers": {"eliza-turns": "3"},
        },
        {
            "rpc": "error",
            "code": "invalid_argument",
            "message": "say something: the sentence is empty",
            "details": [
                {
                    "type": "google.protobuf.StringValue",
                    "value_base64": base64.b64encode(hint).decode(),
                    "value": "SayRequest.sentence",
                }
            ],
            "headers": ELIZA_VERSION,
        },
        {"rpc": "transport", "protos": ["HTTP/2.0"]},
    ]
    return results


@pytest.mark.parametrize("protocol", ["grpc", "grpcweb", "connect"])
async def test_connect_go_client_every_rpc_kind(
    go_client: Path, eliza_url: str, protocol: str
) -> None:
    assert await run_go_client(go_client, "-url", eliza_url, "-protocol", protocol) == (
        _expected(protocol)
    )


async def run_go_client(go_client: Path, *args: str) -> list[dict[str, object]]:
    """Run the connect-go client with ``args``; the JSON results it printed."""
    process = await asyncio.create_subprocess_exec(
        str(go_client),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode()
    return [json.loads(line) for line in stdout.decode().splitlines()]
