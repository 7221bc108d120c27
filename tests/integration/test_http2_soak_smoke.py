"""A short run of the HTTP/2 soak (``tools/http2_soak.py --quick``), as CI's smoke test of it.

The soak is a script, not a timed unit test: its full run is a burst of 1,000 concurrent
calls on one ``HTTP2Transport``, then 20,000 calls with random deadlines, cancellations and
early closes, checking that descriptors, tasks, connections and memory come back. Here the
quick run (200 + 2,000 calls) checks that the harness works and nothing leaks grossly.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOAK = REPO / "tools" / "http2_soak.py"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="the soak measures /proc")
def test_quick_http2_soak_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(SOAK), "--quick", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=REPO,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "http2 soak: PASS (200 + 2000 calls)" in result.stdout, output
    assert "connections left: 0" in result.stdout, output
    for process, metrics in (("client", ("fds", "tasks", "rss", "objects")), ("server", ("fds",))):
        for metric in metrics:
            row = rf"^\s+{process}\s+{metric}\s.*\sok$"
            assert re.search(row, result.stdout, re.MULTILINE), f"no {row!r} in:\n{output}"
