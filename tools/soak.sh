#!/usr/bin/env bash
# Soak test: 100,000 RPCs of every kind over both client transports (aiohttp and
# HTTP1Transport) against our ASGI app under hypercorn, through a loopback proxy that resets
# connections at random, with random cancellations, deadlines and early stream closes. Then
# checks that fds, asyncio tasks, RSS and gc-tracked objects of the client, the server and
# the proxy return to within a small margin of their baseline, and prints the figures.
# Everything runs on 127.0.0.1 and stops by itself. See tools/soak.py for the details.
#
#   tools/soak.sh                     the full run (100,000 RPCs; a few minutes)
#   tools/soak.sh --quick             the short run CI uses (2,000 RPCs; well under a minute)
#   tools/soak.sh --rpcs N --seed S   any size, any seed; --help lists every option
#
# Exit status: 0 pass, 1 a check failed, 2 the harness itself failed.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO}"
exec uv run python tools/soak.py "$@"
