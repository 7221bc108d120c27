"""Regenerate the ``_pb2`` modules of ``connectrpc._proto`` (development only: a tool, not
part of the runtime package).

Usage::

    uv run python tools/gen_grpc_protos.py          # rewrite the modules
    uv run python tools/gen_grpc_protos.py --check  # exit 1 if they are stale

Runs grpcio-tools' protoc with protobuf's ``python`` and ``pyi`` generators on every
``.proto`` file in ``connectrpc/_proto``, with that directory as the include path, so that each file keeps
gRPC's own name (``grpc/health/v1/health.proto``): reflection clients see that name. The
``.pyi`` files are protoc's but for a first line that lets mypy --strict accept their bare
``Mapping`` arguments. The ``.py`` files get three edits, each checked to apply exactly once,
so that a change in protoc's output fails here instead of slipping through:

1. The file goes into ``connectrpc._proto.POOL``, a private descriptor pool, instead of
   protobuf's default one. grpcio-health-checking and grpcio-reflection put the same file
   names and symbols in the default pool, with other contents, and a pool refuses a second,
   different definition of a file; with our own pool both import in either order.
2. The classes' module is the module's ``__name__``: protoc derives ``grpc.health.v1...``
   from the file name, which names grpcio's package.
3. The protobuf runtime version check goes. It requires the runtime to be at least the
   version of the protoc that generated the code; connectrpc supports ``protobuf>=5.26``,
   and what remains uses only the descriptor builder that every supported version has.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "connectrpc" / "_proto"
PACKAGE = "connectrpc._proto"

_HEADER = (
    "# Edited by tools/gen_grpc_protos.py: a private descriptor pool, the real module\n"
    "# name, no runtime version pin.\n"
)
# protoc's stubs accept a message or a dict where a message goes, written as a bare Mapping,
# which mypy --strict reports as a missing type argument.
_STUB_HEADER = '# mypy: disable-error-code="type-arg"\n'
_VERSION_CHECK = re.compile(
    r"from google\.protobuf import runtime_version as _runtime_version\n"
    r"(?P<between>(?:from .*\n)*)"
    r"_runtime_version\.ValidateProtobufRuntimeVersion\(\n(?:    .*\n)*?\)\n"
)


def protos() -> list[str]:
    """The ``.proto`` files of ``connectrpc._proto``, by their names relative to it."""
    return sorted(p.relative_to(HERE).as_posix() for p in HERE.rglob("*.proto"))


def _replace_once(text: str, old: str, new: str, what: str) -> str:
    count = text.count(old)
    if count != 1:
        raise SystemExit(f"generate: expected {what} once in protoc's output, found {count}")
    return text.replace(old, new)


def edit_python(text: str, proto: str) -> str:
    """protoc's ``_pb2.py`` for ``proto``, edited as the module docstring says."""
    text = _replace_once(
        text, "# NO CHECKED-IN PROTOBUF GENCODE\n", _HEADER, "the gencode marker line"
    )
    text, count = _VERSION_CHECK.subn(lambda m: m.group("between"), text)
    if count != 1:
        raise SystemExit(f"generate: expected one runtime version check, found {count}")
    text = _replace_once(
        text,
        "# @@protoc_insertion_point(imports)\n",
        f"from {PACKAGE} import POOL as _POOL\n# @@protoc_insertion_point(imports)\n",
        "the imports insertion point",
    )
    text = _replace_once(
        text,
        "_descriptor_pool.Default().AddSerializedFile(",
        "_POOL.AddSerializedFile(",
        "the default pool",
    )
    text = _replace_once(
        text, "from google.protobuf import descriptor_pool as _descriptor_pool\n", "", "the pool"
    )
    module = proto.removesuffix(".proto").replace("/", ".") + "_pb2"
    return _replace_once(text, f"'{module}'", "__name__", "the module name")


def generate() -> dict[Path, str]:
    """Every generated file, by its path here, with its content."""
    out: dict[Path, str] = {}
    with tempfile.TemporaryDirectory(prefix="connectrpc_proto.") as tmp:
        command = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={HERE}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            *protos(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"generate: protoc failed:\n{result.stdout}{result.stderr}")
        for proto in protos():
            stem = proto.removesuffix(".proto")
            python = (Path(tmp) / f"{stem}_pb2.py").read_text()
            out[HERE / f"{stem}_pb2.py"] = edit_python(python, proto)
            stub = (Path(tmp) / f"{stem}_pb2.pyi").read_text()
            out[HERE / f"{stem}_pb2.pyi"] = _STUB_HEADER + stub
    return out


def stale() -> list[Path]:
    """The checked-in files that differ from what ``generate`` gives."""
    return [
        path for path, text in generate().items() if not path.exists() or path.read_text() != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    if args.check:
        found = stale()
        for path in found:
            print(f"stale: {path.relative_to(HERE.parent.parent)}", file=sys.stderr)
        return 1 if found else 0
    for path, text in generate().items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
