#!/usr/bin/env bash
# Coverage-guided fuzzing campaigns (atheris / libFuzzer) over the targets in tests/fuzz/.
#
#   tools/fuzz.sh [TARGET|all] [--runs N | --seconds S] [--into-repo] [--mask-known] [-- FLAGS]
#
#   TARGET        one target (tools/fuzz.sh --list shows them), or all (the default), run one
#                 after the other: never more than one fuzzing process at a time
#   --runs N      executions per target (default: --seconds 60)
#   --seconds S   wall-clock seconds per target
#   --into-repo   afterwards, merge the inputs that add coverage into tests/fuzz/corpus/<target>
#                 (libFuzzer -merge=1; keep the repo corpus small, check its size)
#   --mask-known  count the known runtime bugs (targets.py KNOWN_BUGS) instead of stopping
#   -- FLAGS      passed on to libFuzzer (e.g. -- -max_len=65536)
#
# New interesting inputs go to a work corpus outside git, ${CONNECTRPC_FUZZ_WORK} (default
# ~/.cache/connectrpc-fuzz)/corpus/<target>, which later campaigns start from along with the
# seed corpus; crashes, timeouts and out-of-memory inputs go to .../artifacts/<target>/ and
# logs to .../logs/. Runs under nice -n 10. Prints executions per target and in total, and
# exits 1 if any target found a failure. Replay a crash with:
#   uv run python -m tests.fuzz.runner TARGET path/to/crash-file
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO}"

target=all runs="" seconds="" into_repo=0 extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --into-repo) into_repo=1; shift ;;
        --mask-known) export CONNECTRPC_FUZZ_MASK_KNOWN=1; shift ;;
        --list) exec uv run python -m tests.fuzz.runner --list ;;
        --) shift; extra=("$@"); break ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
        *) target="$1"; shift ;;
    esac
done
[[ -n "${runs}" || -n "${seconds}" ]] || seconds=60

WORK="${CONNECTRPC_FUZZ_WORK:-${XDG_CACHE_HOME:-${HOME}/.cache}/connectrpc-fuzz}"
mapfile -t all_targets < <(uv run python -m tests.fuzz.runner --list | cut -f1)
if [[ "${target}" == all ]]; then
    targets=("${all_targets[@]}")
else
    [[ " ${all_targets[*]} " == *" ${target} "* ]] || {
        echo "fuzz.sh: unknown target ${target}; known: ${all_targets[*]}" >&2
        exit 2
    }
    targets=("${target}")
fi

dict_for() {
    case "$1" in
        http1_*) echo tests/fuzz/dicts/http.dict ;;
        connect_* | server_*) echo tests/fuzz/dicts/connect.dict ;;
        *) echo "" ;;
    esac
}

total=0 failed=0 summary=()
for t in "${targets[@]}"; do
    corpus="${WORK}/corpus/${t}" artifacts="${WORK}/artifacts/${t}" logs="${WORK}/logs"
    mkdir -p "${corpus}" "${artifacts}" "${logs}"
    log="${logs}/${t}-$(date +%Y%m%dT%H%M%S).log"
    max_len="$(uv run python -m tests.fuzz.runner --list | awk -F'\t' -v t="${t}" '$1 == t { sub("max_len=", "", $2); print $2 }')"
    flags=(
        "-max_len=${max_len}" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1
        "-artifact_prefix=${artifacts}/"
    )
    [[ -n "${runs}" ]] && flags+=("-runs=${runs}")
    [[ -n "${seconds}" ]] && flags+=("-max_total_time=${seconds}")
    dict="$(dict_for "${t}")"
    [[ -n "${dict}" ]] && flags+=("-dict=${dict}")
    echo "==> ${t} (log: ${log})" >&2
    status=0
    nice -n 10 uv run python -m tests.fuzz.runner "${t}" "${corpus}" "tests/fuzz/corpus/${t}" \
        "${flags[@]}" "${extra[@]}" >"${log}" 2>&1 || status=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "${log}" | tail -1)"
    if [[ -z "${execs}" ]]; then  # killed before the final stats: the last status line
        execs="$(grep -oE '^#[0-9]+' "${log}" | tail -1 | tr -d '#')"
    fi
    execs="${execs:-0}"
    result=ok
    if [[ ${status} -ne 0 ]]; then
        result="FAILED (exit ${status}; see ${log} and ${artifacts}/)"
        failed=1
        grep -E 'known bug|InvariantViolationError|Error|Exception' "${log}" | head -5 >&2 || true
    fi
    grep -h 'fuzz: known bug' "${log}" | tail -3 >&2 || true
    corpus_size="$(find "${corpus}" -type f | wc -l)"
    summary+=("$(printf '%-26s %12s executions  %6s corpus files  %s' "${t}" "${execs}" "${corpus_size}" "${result}")")
    echo "${summary[-1]}" >&2
    total=$((total + execs))
    if [[ ${into_repo} -eq 1 ]]; then
        nice -n 10 uv run python -m tests.fuzz.runner "${t}" -merge=1 "tests/fuzz/corpus/${t}" \
            "${corpus}" "-max_len=${max_len}" >>"${log}" 2>&1 || true
    fi
done

echo
printf '%s\n' "${summary[@]}"
printf '%-26s %12s executions\n' "TOTAL" "${total}"
exit "${failed}"
