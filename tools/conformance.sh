#!/usr/bin/env bash
# Run the official Connect conformance suite against connect-python.
#
#   tools/conformance.sh [client|server|all] [--server NAME] [extra connectconformance flags...]
#
# e.g. tools/conformance.sh client --run 'Basic/**'   (interactive narrowing; not for CI)
#
# --server NAME (or CONFORMANCE_SERVER=NAME) picks the server the server suite runs on:
# hypercorn (default; patched with connectrpc.hypercorn.patch_hypercorn_h2), or pyvoy, granian,
# uvicorn (unpatched ASGI servers; conformance/launchers.py), or gunicorn (the WSGI
# application with the sync implementation, conformance/server_sync.py). A server other than hypercorn uses
# conformance/server-config-NAME.yaml (what that server can carry), the shared known-failing
# and known-flaky files (empty) unless conformance/server-known-{failing,flaky}-NAME.txt exist,
# and logs to conformance/logs/server-NAME.log.
#
# Installs the pinned runner if missing, regenerates the harness protos into conformance/gen,
# then runs the runner with our config, known-failing and known-flaky files. Exits non-zero if
# any case fails. The full runner log is kept in conformance/logs/<mode>.log.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO}"

mode="${1:-client}"
[[ $# -gt 0 ]] && shift
server="${CONFORMANCE_SERVER:-hypercorn}"
if [[ "${1:-}" == --server ]]; then
    server="${2:?--server needs a name}"
    shift 2
elif [[ "${1:-}" == --server=* ]]; then
    server="${1#--server=}"
    shift
fi
extra=("$@")

case "${mode}" in
    client | server | all) ;;
    *)
        echo "usage: $0 [client|server|all] [--server NAME] [connectconformance flags...]" >&2
        exit 2
        ;;
esac
case "${server}" in
    hypercorn | pyvoy | granian | uvicorn | gunicorn) ;;
    *)
        echo "$0: unknown server ${server} (hypercorn, pyvoy, granian, uvicorn or gunicorn)" >&2
        exit 2
        ;;
esac

runner="$(tools/install_conformance.sh | tail -n 1)"
tools/gen_conformance_protos.sh
# Use the project's interpreter directly: `uv run` as the runner's child would add start-up
# time per process and sit between the runner's SIGTERM and our program.
python_bin="$(uv run python -c 'import sys; print(sys.executable)')"
mkdir -p conformance/logs

# run_suite <client|server> <program.py> [runner flags for this side...]
# CONF_SUFFIX picks <side>-config<suffix>.yaml and, when they exist,
# <side>-known-{failing,flaky}<suffix>.txt; LOG_SUFFIX names the log.
run_suite() {
    local side="$1" program="$2"
    shift 2
    local conf="conformance/${side}-config${CONF_SUFFIX:-}.yaml"
    local log="conformance/logs/${side}${LOG_SUFFIX:-}.log"
    local failing="conformance/${side}-known-failing${CONF_SUFFIX:-}.txt"
    local flaky="conformance/${side}-known-flaky${CONF_SUFFIX:-}.txt"
    [[ -f "${failing}" ]] || failing="conformance/${side}-known-failing.txt"
    [[ -f "${flaky}" ]] || flaky="conformance/${side}-known-flaky.txt"
    for f in "${conf}" "${program}" "${failing}" "${flaky}"; do
        if [[ ! -f "${f}" ]]; then
            echo "conformance: ${side} mode needs ${f}, which does not exist yet" >&2
            return 2
        fi
    done
    echo "conformance: running ${side} suite (log: ${log})" >&2
    local rc=0
    "${runner}" --mode "${side}" --conf "${conf}" \
        --known-failing "@${failing}" \
        --known-flaky "@${flaky}" \
        "$@" -v "${extra[@]}" \
        -- "${python_bin}" "${program}" >"${log}" 2>&1 || rc=$?
    # Failures first, each with its reason (up to the next blank line), then the counts.
    awk '/^(FAILED|ERROR): /{p=1} p&&/^$/{p=0} p' "${log}" | head -n 300
    grep -E '^(Computed .* test case permutation|Loaded .* known|Total cases:|[0-9]+ passed, [0-9]+ failed|\(Another [0-9]+ failed)' "${log}" || true
    if [[ ${rc} -ne 0 ]]; then
        echo "conformance: ${side} suite FAILED (exit ${rc}); see ${log}" >&2
    else
        echo "conformance: ${side} suite passed" >&2
    fi
    return "${rc}"
}

status=0
if [[ "${mode}" == client || "${mode}" == all ]]; then
    # The client suite runs once per client transport: an aiohttp session and HTTP1Transport
    # (HTTP/1.1: Connect and gRPC-Web), then HTTP2Transport, with its own config
    # (client-config-http2.yaml: every protocol, HTTP/1.1 and HTTP/2, full-duplex bidi).
    # "sync" is the blocking client (conformance/client_sync.py, ConnectClient over
    # SyncHTTP1Transport) on the HTTP/1.1 config; "sync-http2" the blocking client with
    # SyncHTTP2Transport for HTTP/2 (gRPC included), on client-config-sync-http2.yaml.
    for transport in ${CONFORMANCE_CLIENT_TRANSPORTS:-aiohttp http1 http2 sync sync-http2}; do
        echo "conformance: client transport ${transport}" >&2
        suffix=""
        program=conformance/client.py
        [[ "${transport}" == http2 || "${transport}" == sync-http2 ]] && suffix="-${transport}"
        [[ "${transport}" == sync* ]] && program=conformance/client_sync.py
        CONFORMANCE_CLIENT_TRANSPORT="${transport}" LOG_SUFFIX="-${transport}" \
            CONF_SUFFIX="${suffix}" run_suite client "${program}" || status=$?
    done
fi
if [[ "${mode}" == server || "${mode}" == all ]]; then
    # The runner starts one server process per (HTTP version, TLS, client certs, limit)
    # combination; each is a single-threaded asyncio process. These defaults suit 2 cores.
    # conformance/server.py reads CONFORMANCE_SERVER (inherited through the runner).
    suffix=""
    [[ "${server}" == hypercorn ]] || suffix="-${server}"
    echo "conformance: server suite on ${server}" >&2
    CONFORMANCE_SERVER="${server}" CONF_SUFFIX="${suffix}" LOG_SUFFIX="${suffix}" \
        run_suite server conformance/server.py \
        --max-servers "${CONFORMANCE_MAX_SERVERS:-2}" \
        --parallel "${CONFORMANCE_PARALLEL:-8}" || status=$?
fi
exit "${status}"
