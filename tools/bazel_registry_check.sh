#!/usr/bin/env bash
# Check the documented downstream setup (docs/BAZEL.md) against Bazel modules at the versions
# it pins, offline: the consumer workspace (tests/bazel_consumer, the docs' snippet byte for
# byte) and //examples:eliza, built and tested with Bazel 7 in the Debian sid chroot of
# tools/bazel_ci.sh, every module given with --override_module.
#
#   tools/bazel_registry_check.sh MODULES_DIR [--protoc FILE] [--python PREFIX]
#
# MODULES_DIR  one Bazel module source tree per subdirectory, named by module name: at least
#              rules_python, rules_proto and protobuf, plus whatever of their dependencies
#              should not come from Debian's packages (bazel_skylib, bazel_features, rules_cc,
#              rules_java, rules_shell, rules_pkg, rules_license, platforms). Modules the build
#              never loads (abseil-cpp, rules_jvm_external, rules_kotlin, ...) become empty
#              stubs. The Bazel Central Registry is not used.
# --protoc     the official protoc binary matching the protobuf module (default: protoc 29.3 for
#              linux-x86_64 from Maven Central, com.google.protobuf:protoc:4.29.3, classifier
#              linux-x86_64, type exe, checked against the sha256 below and cached).
# --python     the prefix of a CPython 3.12 installation standing in for rules_python's hermetic
#              interpreter (python-build-standalone, which is not reachable here); default:
#              pyenv's newest 3.12.
#
# What is not the upstream module: protobuf's //:protoc is the official binary instead of the
# C++ build, and rules_python's Python 3.12 is --python. See docs/BAZEL.md for the last result.
# Needs root (the chroot of tools/bazel_ci.sh); run by hand, not part of CI.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CONNECT_PYTHON_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/connect-python}"
PROTOC_VERSION="4.29.3" # Maven's version of protoc 29.3
PROTOC_SHA256="5ae94ad986e83f0b52bd8139e036cbf94ddbba3ad348be8e4baf44447d7e19a4"
MAVEN_REPO="${MAVEN_REPO:-https://repo1.maven.org/maven2}"

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
}

modules="" protoc="" python=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --protoc) protoc="$2" && shift 2 ;;
        --python) python="$2" && shift 2 ;;
        -h | --help) usage ;;
        -*) usage ;;
        *) [[ -z "${modules}" ]] || usage && modules="$1" && shift ;;
    esac
done
[[ -n "${modules}" ]] || usage
modules="$(cd "${modules}" && pwd)"
for name in rules_python rules_proto protobuf; do
    [[ -f "${modules}/${name}/MODULE.bazel" ]] || {
        echo "bazel_registry_check: ${modules}/${name}/MODULE.bazel is missing" >&2
        exit 1
    }
done

if [[ -z "${protoc}" ]]; then
    protoc="${CACHE}/registry/protoc-${PROTOC_VERSION}-linux-x86_64.exe"
    if [[ ! -f "${protoc}" ]]; then
        mkdir -p "$(dirname "${protoc}")"
        curl -fsSL -o "${protoc}.partial" \
            "${MAVEN_REPO}/com/google/protobuf/protoc/${PROTOC_VERSION}/protoc-${PROTOC_VERSION}-linux-x86_64.exe"
        mv "${protoc}.partial" "${protoc}"
    fi
    echo "${PROTOC_SHA256}  ${protoc}" | sha256sum --check --quiet || {
        echo "bazel_registry_check: ${protoc} does not have the expected sha256" >&2
        exit 1
    }
fi
protoc="$(realpath "${protoc}")"

if [[ -z "${python}" ]] && command -v pyenv >/dev/null 2>&1; then
    version="$(pyenv versions --bare | grep -E '^3\.12\.[0-9]+$' | sort -V | tail -n 1 || true)"
    [[ -z "${version}" ]] || python="$(pyenv root)/versions/${version}"
fi
[[ -n "${python}" && -x "${python}/bin/python3" ]] || {
    echo "bazel_registry_check: give a CPython 3.12 installation with --python PREFIX" >&2
    exit 1
}
python="$(cd "${python}" && pwd)"
"${python}/bin/python3" -c 'import sys; assert sys.version_info[:2] == (3, 12), sys.version'

echo "bazel_registry_check: modules in ${modules}:" >&2
for dir in "${modules}"/*/; do
    version="$(sed -n 's/^ *version = "\([^"]*\)".*/\1/p' "${dir}MODULE.bazel" | head -n 1)"
    echo "  $(basename "${dir}") ${version:-(no version in MODULE.bazel)}" >&2
done
[[ ! -f "${modules}/SOURCES.txt" ]] || sed 's/^/  /' "${modules}/SOURCES.txt" >&2
echo "bazel_registry_check: protoc $("${protoc}" --version), Python $("${python}/bin/python3" -V)" >&2

REGISTRY_MODULES="${modules}" REGISTRY_PROTOC="${protoc}" REGISTRY_PYTHON="${python}" \
    exec "${REPO}/tools/bazel_ci.sh" registry
