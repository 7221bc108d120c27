#!/usr/bin/env bash
# Install the Connect conformance runner (connectconformance) at a pinned version.
#
# Idempotent: does nothing when the binary is already present at the right version.
# The binary goes to $CONNECTCONFORMANCE_BIN_DIR, defaulting to "$(go env GOPATH)/bin".
# On success the absolute path of the binary is the last line printed on stdout.
set -euo pipefail

VERSION="${CONNECTCONFORMANCE_VERSION:-v1.0.5}"

if ! command -v go >/dev/null 2>&1; then
    echo "install_conformance: the Go toolchain is required (go install ...@${VERSION})" >&2
    exit 1
fi

BIN_DIR="${CONNECTCONFORMANCE_BIN_DIR:-$(go env GOPATH)/bin}"
BIN="${BIN_DIR}/connectconformance"

installed_version() {
    [[ -x "${BIN}" ]] || return 0
    # Prints e.g. "connectconformance v1.0.5".
    "${BIN}" --version 2>/dev/null | awk '{print $NF}' || true
}

if [[ "$(installed_version)" != "${VERSION}" ]]; then
    echo "install_conformance: installing connectconformance ${VERSION} into ${BIN_DIR}" >&2
    mkdir -p "${BIN_DIR}"
    GOBIN="${BIN_DIR}" \
        go install "connectrpc.com/conformance/cmd/connectconformance@${VERSION}"
    got="$(installed_version)"
    if [[ "${got}" != "${VERSION}" ]]; then
        echo "install_conformance: expected ${VERSION} at ${BIN}, found '${got}'" >&2
        exit 1
    fi
fi

echo "${BIN}"
