#!/usr/bin/env bash
# Run the official Connect conformance suite against the connect-python SERVER
# (conformance/server.py: ConnectASGIApplication under hypercorn).
#
#   tools/conformance_server.sh [extra connectconformance flags...]
#
# e.g. tools/conformance_server.sh --run '**/unary/**' --trace   (narrowing; not for CI)
#
# Installs the pinned runner if missing, regenerates the harness protos into conformance/gen,
# runs the server suite with our config, known-failing and known-flaky files, prints the
# permutation count, the failures and the summary, and exits non-zero if any case fails.
# The full runner log is kept in conformance/logs/server.log.
#
# Parallelism: the runner starts one server process per (HTTP version, TLS, client certs,
# receive limit) combination; each is a single-threaded asyncio process, and the reference
# client is Go. CONFORMANCE_MAX_SERVERS / CONFORMANCE_PARALLEL override the defaults below,
# which suit a 2-core machine.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO}"

max_servers="${CONFORMANCE_MAX_SERVERS:-2}"
parallel="${CONFORMANCE_PARALLEL:-8}"

runner="$(tools/install_conformance.sh | tail -n 1)"
tools/gen_conformance_protos.sh
# Run the project's interpreter directly: `uv run` as the runner's child would add start-up
# time to every server process and sit between the runner's SIGTERM and our program.
python_bin="$(uv run python -c 'import sys; print(sys.executable)')"

conf=conformance/server-config.yaml
failing=conformance/server-known-failing.txt
flaky=conformance/server-known-flaky.txt
log=conformance/logs/server.log
mkdir -p conformance/logs

echo "conformance_server: running the server suite (log: ${log})" >&2
rc=0
"${runner}" --mode server --conf "${conf}" \
    --known-failing "@${failing}" --known-flaky "@${flaky}" \
    --max-servers "${max_servers}" --parallel "${parallel}" \
    -v "$@" \
    -- "${python_bin}" conformance/server.py >"${log}" 2>&1 || rc=$?

# The failures first (each with its reason, up to the next blank line), then the counts.
awk '/^(FAILED|ERROR): /{p=1} p&&/^$/{p=0} p' "${log}" | head -n 300
grep -E '^(Computed [0-9]+ test case permutation|Total cases:|[0-9]+ passed, [0-9]+ failed|Another [0-9]+ )' "${log}" || true
if [[ ${rc} -ne 0 ]]; then
    echo "conformance_server: FAILED (exit ${rc}); see ${log}" >&2
else
    echo "conformance_server: passed" >&2
fi
exit "${rc}"
