#!/usr/bin/env bash
# Set up the development environment: uv, the project virtualenv with every dev tool, and the
# pinned conformance runner. Idempotent; needs only PyPI and the Go module proxy.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO}"

if ! command -v uv >/dev/null 2>&1; then
    echo "setup: installing uv from PyPI" >&2
    python3 -m pip install --quiet --disable-pip-version-check uv
fi
echo "setup: syncing the virtualenv (.venv) from uv.lock" >&2
uv sync --frozen --quiet
tools/install_conformance.sh >/dev/null

# buf, for the buf.gen.yaml example test (a Go build from the module proxy, ~2 minutes once).
BUF_VERSION="v1.50.0"
buf_bin="$(go env GOPATH)/bin/buf"
if [[ ! -x "${buf_bin}" ]] || [[ "$("${buf_bin}" --version 2>/dev/null)" != "${BUF_VERSION#v}" ]]; then
    echo "setup: installing buf ${BUF_VERSION} with go install (takes a couple of minutes)" >&2
    go install "github.com/bufbuild/buf/cmd/buf@${BUF_VERSION}"
fi
