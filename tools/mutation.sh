#!/usr/bin/env bash
# Mutation testing of the pure core with mutmut and pytest alone, and a killed-share report
# per module. A tool to run and quote, not a CI step.
#
#   tools/mutation.sh                   the core modules (CORE below)
#   tools/mutation.sh _core.envelope    only these (a dotted name under connectrpc, a module
#                                       name connectrpc._core.envelope, or a path)
#   tools/mutation.sh --min 90          also exit 1 if a module kills < 90% of its
#                                       non-equivalent mutants
#   MUTATION_JOBS=1 tools/mutation.sh   worker processes (default 2); runs under nice -n 10
#
# The report goes to stdout and to build/mutation/report.txt; the diffs of the survivors to
# build/mutation/survivors.diff. Mutants judged equivalent (no test can tell them from the
# original) are listed, with a reason each, in tools/mutation_equivalent.txt, keyed by module,
# function and a hash of the mutated lines (see tools/mutation_report.py): the keys survive
# edits elsewhere, unlike mutmut's numbered mutant names. To judge a survivor:
#   cd build/mutation && uv run --project ../.. mutmut show <mutant name>
#
# Why mutmut (3.x) rather than cosmic-ray:
# * mutmut works on a copy (mutants/) and switches mutants at run time through trampolines, so
#   the working tree is never rewritten; cosmic-ray's local runs mutate the source files in
#   place, which is unsafe while anyone else edits or tests the same tree.
# * mutmut records which tests reach which function and runs only those tests, in forked
#   workers of one warmed-up pytest: the whole core (~1500 mutants) takes about 2 minutes on
#   2 cores. cosmic-ray starts the full test command once per mutant.
# * mutmut reads its settings from pyproject.toml and runs pytest in-process with the
#   project's own pytest settings (asyncio_mode=auto, filterwarnings=error) unchanged.
# Its limit: mutmut mutates only code inside functions and methods (not module-level tables
# such as _code._HTTP_STATUS, nor @property bodies); those are covered by ordinary tests.
#
# Each run starts from a fresh snapshot in build/mutation/ (gitignored): the library, tests/unit
# and tests/api (the fast in-process tests; codegen, examples and integration spawn processes
# and are left out), and pyproject.toml plus a [tool.mutmut] section written here. A snapshot
# keeps the run consistent while the working tree changes, and a fresh one keeps mutmut's
# incremental cache from reusing stale copies of unmutated modules.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO}"

# The pure core and the protocols: framing, buffers, codecs, compression, errors and codes,
# the Connect, gRPC and gRPC-Web rules, and the deadline timers.
CORE=(
    _core.buffer
    _core.envelope
    _core.codec
    _core.compression
    _core.error
    _core.code
    _core.headers
    _protocol.connect
    _protocol.grpc
    _protocol.server
    _aio.deadline
)
TESTS=(tests/unit tests/api)
# Tests that measure the memory or time of the real code: mutmut's instrumentation (a
# trampoline around every call of a mutated module) changes both, so they fail even with no
# mutant active. Node-id prefixes, passed to pytest as --deselect.
DESELECT=(
    tests/api/test_server_limits.py::test_one_byte_chunks_cost_about_their_size
)
WORK="${REPO}/build/mutation"
JOBS="${MUTATION_JOBS:-2}"

minimum=()
names=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --min) minimum=(--min "$2"); shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) names+=("$1"); shift ;;
    esac
done
[[ ${#names[@]} -gt 0 ]] || names=("${CORE[@]}")

modules=()
for name in "${names[@]}"; do
    name="${name#connectrpc/}"; name="${name#connectrpc.}"; name="${name%.py}"
    path="connectrpc/${name//.//}.py"
    [[ -f "${path}" ]] || { echo "mutation.sh: no module ${path}" >&2; exit 2; }
    modules+=("${path}")
done

rm -rf "${WORK}"
mkdir -p "${WORK}/tests"
cp -r connectrpc "${WORK}/"
cp tests/__init__.py "${WORK}/tests/"
for t in "${TESTS[@]}"; do cp -r "${t}" "${WORK}/tests/"; done
find "${WORK}" -name __pycache__ -prune -exec rm -rf {} +
cp pyproject.toml "${WORK}/"
{
    echo
    echo "[tool.mutmut]"
    echo 'source_paths = ["connectrpc"]'
    printf 'only_mutate = [%s]\n' "$(printf '"%s", ' "${modules[@]}" | sed 's/, $//')"
    printf 'pytest_add_cli_args_test_selection = [%s]\n' \
        "$(printf '"%s", ' "${TESTS[@]}" | sed 's/, $//')"
    printf 'pytest_add_cli_args = [%s]\n' \
        "$(printf '"--deselect", "%s", ' "${DESELECT[@]}" | sed 's/, $//')"
    echo 'use_git_change_detection = false'
} >>"${WORK}/pyproject.toml"

cd "${WORK}"
echo "mutation: ${#modules[@]} module(s), tests ${TESTS[*]}, ${JOBS} worker(s); log in ${WORK}/run.log" >&2
SECONDS=0
if ! nice -n 10 uv run --project "${REPO}" mutmut run --max-children "${JOBS}" >run.log 2>&1; then
    tail -n 40 run.log >&2
    echo "mutation: mutmut run failed (see ${WORK}/run.log)" >&2
    exit 2
fi
echo "mutation: mutmut ran in ${SECONDS}s" >&2

status=0
uv run --project "${REPO}" python "${REPO}/tools/mutation_report.py" \
    --equivalent "${REPO}/tools/mutation_equivalent.txt" "${minimum[@]}" "${modules[@]}" \
    >report.txt || status=$?
cat report.txt
exit "${status}"
