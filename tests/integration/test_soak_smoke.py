"""A short run of the soak test (``tools/soak.sh --quick``), as CI's smoke test of it.

The soak itself is a script, not a timed unit test: ``tools/soak.sh`` runs 100,000 RPCs.
Here 2,000 RPCs with the same chaos check that the harness works and that nothing leaks
grossly; the run is a separate process tree (client, server, proxy) on 127.0.0.1.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOAK = REPO / "tools" / "soak.py"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="the soak measures /proc")
def test_quick_soak_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(SOAK), "--quick", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "soak: PASS (2000 RPCs" in result.stdout, output
    for process in ("client", "server", "proxy"):
        for metric in ("fds", "tasks", "rss", "objects"):
            row = rf"^\s+{process}\s+{metric}\s.*\sok$"
            assert re.search(row, result.stdout, re.MULTILINE), f"no {row!r} in:\n{output}"
