"""Generate the example's Python code: ``_pb2.py``, ``_pb2.pyi`` and ``_connect.py``.

Usage: ``uv run python tools/gen_examples.py [--out DIR]`` (default ``examples/gen``).

Runs ``grpc_tools.protoc`` with protobuf's Python and pyi generators and our plugin,
``protoc-gen-connect_python`` (the console script installed by ``uv sync``), on every
``.proto`` file under ``examples/proto``. Output files are written to a temporary directory
first and then moved into place one by one, so readers never see half-written modules.

The proto files live at ``eliza/v1/...`` (not ``connectrpc/eliza/v1/...``) although their
proto package is ``connectrpc.eliza.v1``: protoc derives the Python module from the file
path, and a ``connectrpc`` package in the generated code would collide with the runtime.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO / "examples" / "proto"
DEFAULT_OUT = REPO / "examples" / "gen"
PLUGIN_NAME = "protoc-gen-connect_python"


def find_plugin() -> Path:
    """The plugin executable: next to this interpreter (the venv), else on ``PATH``."""
    candidate = Path(sys.executable).parent / PLUGIN_NAME
    if candidate.exists():
        return candidate
    found = shutil.which(PLUGIN_NAME)
    if found is None:
        raise SystemExit(
            f"gen_examples: {PLUGIN_NAME} not found; run `uv sync` in {REPO} to install it"
        )
    return Path(found)


def generate(out: Path = DEFAULT_OUT) -> list[Path]:
    """Generate code for every example proto into ``out``; returns the files written."""
    protos = sorted(p.relative_to(PROTO_ROOT).as_posix() for p in PROTO_ROOT.rglob("*.proto"))
    if not protos:
        raise SystemExit(f"gen_examples: no .proto files under {PROTO_ROOT}")
    plugin = find_plugin()
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="gen_examples.", dir=out) as tmp:
        command = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--plugin={PLUGIN_NAME}={plugin}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--connect_python_out={tmp}",
            *protos,
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(
                f"gen_examples: protoc failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
        for source in sorted(Path(tmp).rglob("*")):
            if source.is_dir():
                continue
            target = out / source.relative_to(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not list the files")
    args = parser.parse_args(argv)
    for path in generate(args.out.resolve()):
        if not args.quiet:
            print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
