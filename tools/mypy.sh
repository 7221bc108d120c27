#!/usr/bin/env bash
# mypy --strict over everything we ship or run: the library, the generator, the tests, the
# examples, the conformance programs and the code our generator produced for them.
# Generated code is checked as imported by its users (examples/gen, conformance/gen on the
# path), so it is held to the same strictness as hand-written code. The codegen golden files
# are checked by tests/codegen itself, next to their generated _pb2 modules.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO}"

[[ -d examples/gen/eliza ]] || uv run python tools/gen_examples.py >/dev/null
[[ -d conformance/gen/connectrpc_conformance ]] || tools/gen_conformance_protos.sh

echo "mypy: library, generator, tests, tools" >&2
uv run mypy connectrpc protoc_plugin tests/api tests/integration tests/unit tests/fuzz tests/codegen/*.py tests/__init__.py \
    tools/soak.py tools/server_limits.py tools/gen_grpc_protos.py tests/browser/test_browser.py

echo "mypy: examples (with generated code)" >&2
MYPYPATH=examples:examples/gen uv run mypy --exclude '^examples/gen/' \
    examples tests/examples tools/gen_examples.py tools/http2_soak.py

echo "mypy: conformance programs (with generated code)" >&2
MYPYPATH=conformance/gen uv run mypy --exclude '^conformance/gen/' conformance/*.py
