"""``buf generate`` with our plugin as a local plugin gives the same code as protoc."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..go_tools import find_go_tool

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def find_buf() -> str:
    return find_go_tool("buf")


def test_buf_generate_matches_protoc(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    subprocess.run(
        [find_buf(), "generate", "--template", "buf.gen.yaml", "-o", str(tmp_path)],
        cwd=EXAMPLES,
        env=env,
        check=True,
    )
    generated = tmp_path / "gen" / "eliza" / "v1"
    expected = EXAMPLES / "gen" / "eliza" / "v1"
    assert (generated / "eliza_connect.py").read_text() == (
        expected / "eliza_connect.py"
    ).read_text()
    assert (generated / "eliza_pb2.pyi").exists()
    assert (generated / "eliza_pb2.py").exists()
