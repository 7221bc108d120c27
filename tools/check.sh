#!/usr/bin/env bash
# Run every check: lint, format, types, unit/API/example tests, and the conformance suites.
# This is the README's test command and exactly what CI (.ci/run) runs.
#
#   tools/check.sh            everything
#   tools/check.sh --fast     skip the conformance suites and the Bazel run
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO}"

fast=0
[[ "${1:-}" == "--fast" ]] && fast=1

step() { printf '\n==> %s\n' "$*" >&2; }
SECONDS=0

step "setup"
tools/setup.sh

step "generate code (examples, conformance harness)"
uv run python tools/gen_examples.py --quiet
tools/gen_conformance_protos.sh

step "ruff"
uv run ruff check .
uv run ruff format --check .

step "buildifier (Starlark), requirements lock in sync with uv.lock"
tools/buildifier.sh
uv run python tools/check_requirements_lock.py

step "mypy --strict (library, generator, tests, examples, conformance, generated code)"
tools/mypy.sh

step "pytest"
uv run pytest -q

if [[ ${fast} -eq 0 ]]; then
    step "conformance: client"
    tools/conformance.sh client
    step "conformance: server (hypercorn, with connectrpc.hypercorn's fix)"
    tools/conformance.sh server
    step "conformance: server on pyvoy, unpatched (full matrix and HTTP/3)"
    tools/conformance.sh server --server pyvoy
    step "conformance: server on uvicorn, unpatched (HTTP/1.1: Connect and gRPC-Web)"
    tools/conformance.sh server --server uvicorn
    step "conformance: WSGI server on gunicorn, sync handlers (HTTP/1.1: Connect and gRPC-Web)"
    tools/conformance.sh server --server gunicorn
    step "bazel: build, conformance and consumer workspace with a real Bazel (offline)"
    tools/bazel_ci.sh
fi

step "all checks passed in ${SECONDS}s"
