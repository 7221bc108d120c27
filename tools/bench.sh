#!/usr/bin/env bash
# Sets up every benchmark peer (idempotent; only package registries are used) and runs the
# comparison on loopback. Prints a table and writes benchmarks/results/latest.{md,json}.
#
#   tools/bench.sh            full run (5 interleaved rounds, ~20 minutes)
#   tools/bench.sh --quick    smoke test (2 short rounds, ~1-2 minutes)
#   tools/bench.sh --only ours,official --rounds 3
#   tools/bench.sh --profile  py-spy profiles of our client and server (benchmarks/profile.py)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/benchmarks/setup.sh"
if [[ "${1:-}" == "--profile" ]]; then
  shift
  exec python3 "$ROOT/benchmarks/profile.py" "$@"
fi
exec python3 "$ROOT/benchmarks/run.py" "$@"
