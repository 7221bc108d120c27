#!/usr/bin/env bash
# Lint every Starlark file (MODULE.bazel, BUILD.bazel, *.bzl) with buildifier.
#
#   tools/buildifier.sh          # check formatting and lint (warnings fail), as CI does
#   tools/buildifier.sh --fix    # rewrite files in place, then lint
#
# buildifier comes from the npm package @bazel/buildifier (it ships a prebuilt binary), installed
# into a cache directory outside the repository the first time it is needed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${BUILDIFIER_NPM_VERSION:-8.2.1}"
CACHE="${CONNECT_PYTHON_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/connect-python}/buildifier-${VERSION}"
BIN="${CACHE}/node_modules/.bin/buildifier"

if [[ ! -x "${BIN}" ]]; then
    command -v npm >/dev/null 2>&1 || {
        echo "buildifier: npm is required to install @bazel/buildifier" >&2
        exit 1
    }
    echo "buildifier: installing @bazel/buildifier@${VERSION} into ${CACHE}" >&2
    mkdir -p "${CACHE}"
    npm install --prefix "${CACHE}" --no-save --no-audit --no-fund --loglevel=error \
        "@bazel/buildifier@${VERSION}" >&2
fi

mode=(-mode=check)
if [[ "${1:-}" == "--fix" ]]; then
    mode=(-mode=fix)
fi

cd "${REPO}"
# Collect the files ourselves so that bazel-* output symlinks and nested consumer outputs are
# never walked into.
mapfile -t files < <(
    find . \( -name 'bazel-*' -o -name '.git' -o -name 'node_modules' -o -name '.venv' \) -prune -o \
        -type f \( -name 'BUILD.bazel' -o -name 'BUILD' -o -name '*.bzl' -o -name 'MODULE.bazel' \
        -o -name 'WORKSPACE' -o -name 'WORKSPACE.bazel' -o -name '*.BUILD' \) -print | sort
)
if [[ ${#files[@]} -eq 0 ]]; then
    echo "buildifier: no Starlark files found" >&2
    exit 1
fi
"${BIN}" "${mode[@]}" -lint=warn -v "${files[@]}"
echo "buildifier: ${#files[@]} files clean" >&2
