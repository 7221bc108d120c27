#!/usr/bin/env bash
# Measures how ASGI servers treat a client that stops reading a server stream, and slowloris
# connections (issue 8, items 9 and 10); results are summarised in docs/DEPLOYMENT.md.
# The servers run from their own virtualenv (default ~/.cache/connectrpc-server-limits/venv,
# created on first use with uv from PyPI), never the project's. Loopback only, bounded in
# time; takes ~12 minutes for everything. Arguments go to tools/server_limits.py, e.g.
#
#   tools/server_limits.sh --only backpressure --servers hypercorn,granian
#   tools/server_limits.sh --only slowloris --conns 200 --slowloris-cap 30
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
exec nice -n 5 uv run python tools/server_limits.py "$@"
