#!/usr/bin/env bash
# The Eliza demo: set up the environment, generate the example code, then start a server on a
# free port of 127.0.0.1, run a client conversation through all four RPC kinds against it,
# and stop the server. Everything is local; see examples/eliza_demo.py.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v uv >/dev/null 2>&1; then
    echo "demo: installing uv from PyPI" >&2
    python3 -m pip install --quiet --disable-pip-version-check uv
fi
# The lockfile pins everything; without network, fall back to uv's cache.
uv sync --quiet || uv sync --quiet --offline
uv run --no-sync python tools/gen_examples.py --quiet
exec uv run --no-sync python examples/eliza_demo.py "$@"
