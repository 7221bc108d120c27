"""Make the Eliza example importable: generate its code (when stale) and extend sys.path.

This runs when pytest loads the conftest, before the test modules are imported, because they
import the generated modules at the top. Generation goes through ``tools/gen_examples.py``
into ``examples/gen`` (gitignored) and is skipped when the output is newer than the protos
and the plugin sources.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
GEN = EXAMPLES / "gen"
OUTPUTS = ("eliza/v1/eliza_pb2.py", "eliza/v1/eliza_pb2.pyi", "eliza/v1/eliza_connect.py")


def _stale() -> bool:
    outputs = [GEN / name for name in OUTPUTS]
    if not all(path.exists() for path in outputs):
        return True
    inputs = [
        *(EXAMPLES / "proto").rglob("*.proto"),
        *(REPO / "protoc_plugin").rglob("*.py"),
        REPO / "tools" / "gen_examples.py",
    ]
    oldest_output = min(path.stat().st_mtime for path in outputs)
    return any(path.stat().st_mtime > oldest_output for path in inputs)


if _stale():
    subprocess.run([sys.executable, str(REPO / "tools" / "gen_examples.py"), "--quiet"], check=True)

for path in (GEN, EXAMPLES):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
