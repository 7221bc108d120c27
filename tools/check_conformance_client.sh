#!/usr/bin/env bash
# Lint and type-check the conformance programs (conformance/*.py) against the generated
# harness protos. mypy needs conformance/gen on its path, which the programs add to sys.path
# themselves at run time.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO}"
[[ -d conformance/gen/connectrpc_conformance ]] || tools/gen_conformance_protos.sh
uv run ruff check conformance/
uv run ruff format --check conformance/
MYPYPATH=conformance/gen uv run mypy --strict conformance/*.py
