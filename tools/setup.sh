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

# grpcurl, for the reflection and health tests (a Go build from the module proxy). Its
# -version says nothing for a `go install` build, so the version is read from the binary.
GRPCURL_VERSION="v1.9.4"
grpcurl_bin="$(go env GOPATH)/bin/grpcurl"
if [[ ! -x "${grpcurl_bin}" ]] \
    || [[ "$(go version -m "${grpcurl_bin}" 2>/dev/null | awk '$1 == "mod" { print $3; exit }')" != "${GRPCURL_VERSION}" ]]; then
    echo "setup: installing grpcurl ${GRPCURL_VERSION} with go install" >&2
    go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@${GRPCURL_VERSION}"
fi

# The connect-node server of the HTTP/2 interop test (tests/interop/node): its npm packages,
# pinned by package-lock.json.
if [[ ! -d tests/interop/node/node_modules ]] \
    || [[ tests/interop/node/package-lock.json -nt tests/interop/node/node_modules ]]; then
    echo "setup: npm ci in tests/interop/node" >&2
    npm ci --prefix tests/interop/node --no-audit --no-fund --loglevel=error >/dev/null
    touch tests/interop/node/node_modules
fi

# The browser test (tests/browser): its npm packages, pinned by package-lock.json, and Debian's
# Chromium, which playwright-core drives (it never downloads a browser of its own).
if [[ ! -d tests/browser/node_modules ]] || [[ tests/browser/package-lock.json -nt tests/browser/node_modules ]]; then
    echo "setup: npm ci in tests/browser" >&2
    npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error >/dev/null
    touch tests/browser/node_modules
fi
if [[ -z "${CHROMIUM:-}" ]] && ! command -v chromium >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing Debian's chromium with apt-get (once; about a minute)" >&2
        apt-get update -qq >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "setup: Chromium is missing: install Debian's 'chromium' package (as root) or set" \
            "\$CHROMIUM; tests/browser fails without it" >&2
    fi
fi
