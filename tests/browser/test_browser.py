"""connect-web in headless Chromium calls the Eliza example server on another origin.

The page (``src/app.ts``, bundled with esbuild) is served from one port and Eliza from
another, so every call is cross-origin and needs CORS. It runs Say (with a request header
echoed back in a response header), Introduce (a server stream), an error with details and a
timeout, over Connect with proto and JSON, Connect GET (for Say) and gRPC-Web. The second test starts Eliza
without ``--cors-origin`` and checks that the browser then blocks every call: the first test
passes because of the CORS support, not in spite of it.

Needs Debian's Chromium (``/usr/bin/chromium``, or ``$CHROMIUM``) and ``npm ci`` in this
folder; ``tools/setup.sh`` installs both. Screenshots are kept in ``build/artifacts/browser``.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..go_tools import find_go_tool

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ARTIFACTS = REPO / "build" / "artifacts" / "browser"
TRANSPORTS = ("connect+proto", "connect+json", "connect+proto+get", "grpc-web+proto")
SCENARIOS = ("say", "introduce", "errorDetails", "timeout")
PAUSE = "0.25"  # seconds between Introduce's sentences: 5 sentences take 1 s; the page waits 0.7 s


def _chromium() -> str:
    path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(path).is_file():
        pytest.fail(
            f"Chromium is not installed at {path}: run tools/setup.sh (it installs Debian's "
            "chromium package with apt-get) or point $CHROMIUM at a Chromium binary"
        )
    return path


def _buf() -> str:
    return find_go_tool("buf", "the page's descriptors are generated with it")


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page, built: generated descriptors, type-checked, bundled with index.html."""
    bin_dir = HERE / "node_modules" / ".bin"
    if not (bin_dir / "esbuild").exists():
        pytest.fail("tests/browser/node_modules is missing: run tools/setup.sh (npm ci)")
    _run([_buf(), "generate"], cwd=HERE)
    _run([str(bin_dir / "tsc"), "-p", "."], cwd=HERE)
    out = tmp_path_factory.mktemp("site")
    _run(
        [
            str(bin_dir / "esbuild"),
            "src/app.ts",
            "--bundle",
            "--format=iife",
            "--target=es2022",
            f"--outfile={out / 'app.js'}",
        ],
        cwd=HERE,
    )
    shutil.copy(HERE / "index.html", out / "index.html")
    return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_origin(site: Path) -> Iterator[str]:
    """A static file server for the page: the browser's origin."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _eliza(*args: str) -> Iterator[str]:
    """The Eliza example server on a free port (another origin than the page's)."""
    cmd = [sys.executable, str(REPO / "examples" / "eliza_server.py"), "--port", "0"]
    cmd += ["--pause", PAUSE, *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on "), f"eliza_server said {line!r}"
        yield line.removeprefix("listening on ").strip()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def eliza(page_origin: str) -> Iterator[str]:
    """Eliza allowing the page's origin with ``--cors-origin``."""
    with _eliza("--cors-origin", page_origin) as url:
        yield url


@pytest.fixture
def eliza_without_cors() -> Iterator[str]:
    """Eliza as it is without ``--cors-origin``."""
    with _eliza() as url:
        yield url


def _open_page(page_origin: str, server: str, name: str) -> dict[str, Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / f"{name}.png"
    done = subprocess.run(
        [
            "node",
            "run.mjs",
            f"{page_origin}/index.html?server={server}",
            str(screenshot),
            _chromium(),
        ],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"run.mjs printed nothing ({done.returncode}):\n{done.stderr}"
    report: dict[str, Any] = json.loads(lines[-1])
    assert "error" not in report, f"{report['error']}\nconsole:\n" + "\n".join(report["console"])
    assert screenshot.is_file()
    return report


def test_connect_web_calls_eliza_across_origins(page_origin: str, eliza: str) -> None:
    assert page_origin.rsplit(":", 1)[1] != eliza.rsplit(":", 1)[1], "must be cross-origin"
    report = _open_page(page_origin, eliza, "with-cors")
    results = report["results"]
    assert sorted(results) == sorted(TRANSPORTS)
    failed = {
        f"{transport}/{name}": outcome
        for transport, outcomes in results.items()
        for name, outcome in outcomes.items()
        if not outcome["ok"]
    }
    assert not failed, f"{failed}\nconsole:\n" + "\n".join(report["console"])
    for outcomes in results.values():
        assert sorted(outcomes) == sorted(SCENARIOS)
        assert outcomes["errorDetails"]["code"] == "InvalidArgument"
        assert outcomes["timeout"]["code"] == "DeadlineExceeded"


def test_without_cors_the_browser_blocks_every_call(
    page_origin: str, eliza_without_cors: str
) -> None:
    report = _open_page(page_origin, eliza_without_cors, "without-cors")
    for transport, outcomes in report["results"].items():
        for name, outcome in outcomes.items():
            assert not outcome["ok"], f"{transport}/{name} passed without CORS: {outcome}"
            # fetch() rejects with a TypeError, which connect-web reports as "unknown".
            assert outcome["code"] == "Unknown", (transport, name, outcome)
    blocked = [line for line in report["console"] if "blocked by CORS policy" in line]
    assert blocked, "Chromium did not report CORS blocking:\n" + "\n".join(report["console"])
