"""Coverage-guided fuzzing of one target with atheris (libFuzzer): ``tools/fuzz.sh`` runs it.

    python -m tests.fuzz.runner TARGET [libFuzzer flags and corpus directories]
    python -m tests.fuzz.runner TARGET FILE...      # replay inputs (e.g. a crash)
    python -m tests.fuzz.runner --list

The runtime (``connectrpc``) is imported under atheris' bytecode instrumentation, so
libFuzzer sees which branches of our parsers an input reaches and keeps the inputs that
reach new ones. Targets needing heap accounting (the decompressors) run with tracemalloc on
for the whole process. With known bugs masked (``CONNECTRPC_FUZZ_MASK_KNOWN=1``) each one
is reported on its 1st, 10th, 100th, ... hit.
"""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("usage: python -m tests.fuzz.runner TARGET|--list [libFuzzer args]")
    if argv[1] == "--list":
        from .targets import TARGETS

        for name, t in TARGETS.items():
            print(f"{name}\tmax_len={t.max_len}\t{t.doc.splitlines()[0]}")
        return

    import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]

    with atheris.instrument_imports(include=["connectrpc"]):
        import connectrpc._core.compression
        import connectrpc._core.envelope
        import connectrpc._protocol.connect
        import connectrpc._transports.http1  # noqa: F401
    from . import targets

    name = argv[1]
    if name not in targets.TARGETS:
        raise SystemExit(f"unknown target {name!r}; known: {', '.join(targets.TARGETS)}")
    fn = targets.TARGETS[name].fn
    if name.startswith("decompress_"):
        tracemalloc.start()

    files = [a for a in argv[2:] if not a.startswith("-") and Path(a).is_file()]
    if files and len(files) == len(argv) - 2:
        for f in files:  # replay without libFuzzer: a plain traceback on failure
            print(f"replaying {f}", file=sys.stderr)
            fn(Path(f).read_bytes())
        print("no failure", file=sys.stderr)
        return

    atheris.Setup([argv[0], *argv[2:]], fn)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
