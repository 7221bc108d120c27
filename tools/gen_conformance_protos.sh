#!/usr/bin/env bash
# Generate Python code for the conformance harness protos into conformance/gen/.
#
# The protos ship inside the connectrpc.com/conformance Go module; we locate that module with
# `go mod download` and never commit copies of them.
#
# The protos live at connectrpc/conformance/v1/*.proto, which protoc would turn into the Python
# package `connectrpc.conformance.v1` -- a collision with our runtime package `connectrpc`. So we
# stage them (in a temporary directory) under connectrpc_conformance/v1/ and rewrite their
# imports accordingly. Only file paths change: the proto package stays connectrpc.conformance.v1,
# so message full names, Any type URLs and RPC paths are exactly those of the runner.
#
# Output: conformance/gen/connectrpc_conformance/v1/{*_pb2.py,*_pb2.pyi[,*_connect.py]}.
# Connect stubs are generated when our plugin (protoc_plugin.main) is importable; set
# CONNECT_PYTHON_PLUGIN=0 to skip them or =1 to require them.
set -euo pipefail

VERSION="${CONNECTCONFORMANCE_VERSION:-v1.0.5}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${REPO}/conformance/gen"
PKG="connectrpc_conformance"

tmp="$(mktemp -d)"
new=""
trap 'rm -rf "${tmp}"' EXIT

# `go mod download` outside any module: works from an empty directory.
mod_json="$(cd "${tmp}" && GOFLAGS=-mod=mod go mod download -json "connectrpc.com/conformance@${VERSION}")"
mod_dir="$(printf '%s' "${mod_json}" | (cd "${REPO}" && uv run python -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit("go mod download: " + d.get("Error", "no Dir")))'))"
src="${mod_dir}/proto/connectrpc/conformance/v1"
[[ -d "${src}" ]] || { echo "gen_conformance_protos: ${src} not found" >&2; exit 1; }

stage="${tmp}/proto"
mkdir -p "${stage}/${PKG}/v1"
for f in "${src}"/*.proto; do
    sed 's#^import "connectrpc/conformance/v1/#import "'"${PKG}"'/v1/#' "${f}" \
        > "${stage}/${PKG}/v1/$(basename "${f}")"
done

cd "${REPO}"
plugin_bin="${REPO}/.venv/bin/protoc-gen-connect_python"
want_plugin="${CONNECT_PYTHON_PLUGIN:-auto}"
use_plugin=0
if [[ "${want_plugin}" != "0" ]]; then
    if [[ -x "${plugin_bin}" ]] && uv run python -c 'import protoc_plugin.main' >/dev/null 2>&1; then
        use_plugin=1
    elif [[ "${want_plugin}" == "1" ]]; then
        echo "gen_conformance_protos: protoc-gen-connect_python is not usable (uv sync?)" >&2
        exit 1
    else
        echo "gen_conformance_protos: plugin not available; generating *_pb2 only" >&2
    fi
fi

# Generate into a fresh directory next to OUT, then swap it in only if the output changed:
# other runs (the server suite, say) may be importing from OUT at the same moment.
new="$(mktemp -d "${REPO}/conformance/.gen.XXXXXX")"
trap 'rm -rf "${tmp}" "${new}"' EXIT

# generate [extra protoc args...]
generate() {
    rm -rf "${new:?}"/*
    mkdir -p "${new}/${PKG}/v1"
    printf '*\n' > "${new}/.gitignore"
    # Regular packages (not namespace packages) keep mypy and the import system unambiguous.
    : > "${new}/${PKG}/__init__.py"
    : > "${new}/${PKG}/v1/__init__.py"
    # grpc_tools.protoc adds its bundled well-known types (google/protobuf/*.proto) to the path.
    uv run python -m grpc_tools.protoc \
        -I "${stage}" \
        --python_out="${new}" \
        --pyi_out="${new}" \
        "$@" \
        "${stage}/${PKG}"/v1/*.proto
}

if [[ "${use_plugin}" == 1 ]]; then
    if ! generate --plugin="protoc-gen-connect_python=${plugin_bin}" \
        --connect_python_out="${new}"; then
        # The conformance client needs only the *_pb2 modules; a plugin bug is the codegen
        # tests' business, so only CONNECT_PYTHON_PLUGIN=1 makes it fatal here.
        [[ "${want_plugin}" == "1" ]] && exit 1
        echo "gen_conformance_protos: WARNING: protoc-gen-connect_python failed;" \
            "generating *_pb2 only" >&2
        generate
    fi
else
    generate
fi

count="$(find "${new}" -name '*.py' -o -name '*.pyi' | wc -l)"
if [[ -d "${OUT}" ]] && diff -r -q -x __pycache__ "${new}" "${OUT}" >/dev/null 2>&1; then
    echo "gen_conformance_protos: ${OUT} is up to date (${count} files)" >&2
else
    old="${OUT}.old.$$"
    [[ -e "${OUT}" ]] && mv "${OUT}" "${old}"
    mv "${new}" "${OUT}"
    rm -rf "${old}"
    echo "gen_conformance_protos: wrote ${count} files to ${OUT}" >&2
fi
