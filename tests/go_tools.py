"""Finding the Go tools ``tools/setup.sh`` installs with ``go install`` (buf, grpcurl)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def find_go_tool(name: str, why: str = "") -> str:
    """The path of ``name``: on PATH, else in ``$(go env GOPATH)/bin``. Fails the test,
    naming ``tools/setup.sh`` (and ``why`` the test needs it), when it is in neither."""
    found = shutil.which(name)
    if found:
        return found
    go = shutil.which("go")
    if go is not None:
        gopath = subprocess.run(
            [go, "env", "GOPATH"], capture_output=True, text=True, check=True
        ).stdout.strip()
        candidate = Path(gopath) / "bin" / name
        if candidate.exists():
            return str(candidate)
    pytest.fail(f"{name} is not installed{f' ({why})' if why else ''}: run tools/setup.sh")
