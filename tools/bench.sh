#!/usr/bin/env bash
# Sets up every benchmark peer (idempotent; only package registries are used) and runs the
# comparison on loopback. Prints a table and writes benchmarks/results/latest.{md,json}.
#
#   tools/bench.sh            full run (5 interleaved rounds, ~20 minutes)
#   tools/bench.sh --quick    smoke test (2 short rounds, ~1-2 minutes)
#   tools/bench.sh --only ours,official --rounds 3
#   tools/bench.sh --profile  py-spy profiles of our client and server (benchmarks/profile.py)
#   tools/bench.sh --interceptors [--quick]  only the interceptor/OpenTelemetry overhead
#   tools/bench.sh --sync [--quick] [--rounds N]  only the blocking clients and the WSGI apps
#                             (benchmarks/results/sync.{md,json}; ~1 minute quick, ~5 full)
#
# A full or quick run ends with benchmarks/interceptors.py (interceptor and OpenTelemetry
# overhead, in memory and over sockets), written to benchmarks/results/interceptors.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/benchmarks/setup.sh"
if [[ "${1:-}" == "--profile" ]]; then
  shift
  exec python3 "$ROOT/benchmarks/profile.py" "$@"
fi
interceptors() {
  local quick=()
  for arg in "$@"; do [[ "${arg}" == --quick ]] && quick=(--quick); done
  (cd "$ROOT" && uv run python benchmarks/interceptors.py "${quick[@]}")
}
if [[ "${1:-}" == "--interceptors" ]]; then
  shift
  interceptors "$@"
  exit
fi
python3 "$ROOT/benchmarks/run.py" "$@"
for arg in "$@"; do [[ "${arg}" == --sync ]] && exit 0; done
interceptors "$@"
