#!/usr/bin/env bash
# Build and test the Bazel rules of connect-python with a real Bazel, offline.
#
#   tools/bazel_ci.sh                 # everything below
#   tools/bazel_ci.sh build           # only step 1
#   tools/bazel_ci.sh build consumer  # steps 1 and 3
#
# Steps (each one a real Bazel invocation; any Bazel failure fails the script):
#   1. build   bazel build //examples:eliza //...  and  bazel test //examples/...
#   2. conformance  bazel test //conformance:all   (the official runner, client and server mode)
#   3. consumer     tests/bazel_consumer: a workspace that depends on connect_python through
#                   local_path_override and imports generated code in a py_test
#
# How: Bazel Central Registry, GitHub and python-build-standalone are unreachable here, so this
# uses Debian sid's Bazel (bazel-bootstrap 7.x and Debian's Bazel module packages) in a chroot,
# cached outside the repository in $CONNECT_PYTHON_CACHE/bazel-sid (default
# ~/.cache/connect-python/bazel-sid) and rebuilt when missing. The repository is bind-mounted
# into the chroot at the same path. Bazel runs with --config=offline (see .bazelrc and
# bazel/offline/README.md); MODULE.bazel stays exactly what users get. Python packages come from
# PyPI, installed into the chroot's system python3 from requirements_lock.txt (with hashes).
# The conformance runner is the local `connectconformance` binary
# (tools/install_conformance.sh: go install ...@v1.0.5), handed to Bazel with
# --repo_env=CONNECTCONFORMANCE_BIN; the harness protos come from the Go module cache's
# v1.0.5.zip through --distdir, checked against the sha256 pinned in MODULE.bazel.
#
# If the chroot cannot be built because Debian's servers do not answer, the script says so
# loudly and exits 0 without running Bazel (nothing could be tested).
#
# Needs root (debootstrap, chroot, mount). Mounts are undone on exit.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CONNECT_PYTHON_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/connect-python}"
ROOT="${CACHE}/bazel-sid"
MIRROR="${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
CONFORMANCE_VERSION="v1.0.5"
APT_PACKAGES=(bazel-bootstrap bazel-rules-python bazel-rules-proto protobuf-compiler
    libprotobuf-dev python3 python3-pip ca-certificates git)
# Where things live inside the chroot.
OPT="/opt/connect-python"

steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(build conformance consumer)

log() { printf '\n=== bazel_ci: %s\n' "$*" >&2; }
elapsed() { echo "$(($(date +%s) - $1))s"; }
skip_loudly() {
    cat >&2 <<EOF

################################################################################
# bazel_ci: SKIPPED -- $*
# The Bazel build and tests did NOT run. Nothing about the Bazel rules was tested.
################################################################################
EOF
    exit 0
}

if [[ "$(id -u)" != 0 ]]; then
    echo "bazel_ci: needs root (debootstrap, chroot, mount)" >&2
    exit 1
fi

# --- mounts, undone on exit ------------------------------------------------------------------
MOUNTS=()
cleanup() {
    local i dir
    # Stop the Bazel servers this run started, so that nothing keeps the bind mount busy.
    if [[ -n "${BAZEL_STARTED:-}" ]]; then
        for dir in "${REPO}" "${REPO}/tests/bazel_consumer"; do
            in_chroot bash -c 'cd "$1" && bazel shutdown' _ "${dir}" >/dev/null 2>&1 || true
        done
    fi
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null || true
    done
}
trap cleanup EXIT
mount_proc() {
    mountpoint -q "$1/proc" || { mount -t proc proc "$1/proc" && MOUNTS+=("$1/proc"); }
}

# in_chroot CMD...: runs CMD in the chroot with a clean environment.
in_chroot() {
    chroot "${ROOT}" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

# --- 1. the chroot -------------------------------------------------------------------------
build_chroot() {
    local tmp="${ROOT}.partial" t
    rm -rf "${tmp}"
    mkdir -p "${CACHE}"
    if ! command -v debootstrap >/dev/null 2>&1; then
        apt-get update -qq >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null 2>&1 ||
            skip_loudly "debootstrap could not be installed (Debian's servers did not answer)"
    fi
    t=$(date +%s)
    log "debootstrap sid from ${MIRROR} into ${tmp}"
    if ! debootstrap --variant=minbase sid "${tmp}" "${MIRROR}" >"${CACHE}/debootstrap.log" 2>&1; then
        rm -rf "${tmp}"
        skip_loudly "debootstrap of Debian sid failed (see ${CACHE}/debootstrap.log): Debian's servers did not answer"
    fi
    log "debootstrap took $(elapsed "${t}")"
    t=$(date +%s)
    mount -t proc proc "${tmp}/proc" && MOUNTS+=("${tmp}/proc") # Java's postinst needs /proc.
    local apt=(apt-get -o Acquire::Check-Valid-Until=false -o Acquire::Retries=3)
    if ! chroot "${tmp}" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" update >"${CACHE}/apt.log" 2>&1 ||
        ! chroot "${tmp}" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
            DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends \
            "${APT_PACKAGES[@]}" >>"${CACHE}/apt.log" 2>&1; then
        umount "${tmp}/proc"
        unset 'MOUNTS[-1]'
        rm -rf "${tmp}"
        skip_loudly "apt-get in the sid chroot failed (see ${CACHE}/apt.log): Debian's servers did not answer"
    fi
    umount "${tmp}/proc"
    unset 'MOUNTS[-1]'
    mv "${tmp}" "${ROOT}"
    log "apt-get install took $(elapsed "${t}")"
}

if [[ -x "${ROOT}/usr/bin/bazel" && -x "${ROOT}/usr/bin/protoc" && -f "${ROOT}/usr/include/google/protobuf/any.proto" ]]; then
    log "reusing the chroot at ${ROOT}"
else
    rm -rf "${ROOT}"
    build_chroot
fi
mount_proc "${ROOT}"
# Trust the same certificate authorities as the host (PyPI may sit behind a TLS proxy).
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "${ROOT}/usr/local/share/ca-certificates/"
    in_chroot update-ca-certificates >/dev/null 2>&1
fi
cp /etc/resolv.conf "${ROOT}/etc/resolv.conf" 2>/dev/null || true
log "$(in_chroot bazel --version), $(in_chroot python3 --version), $(in_chroot protoc --version)"

# --- 2. inputs: the repository, Python packages, rules_python overlay, the runner ---------------
mkdir -p "${ROOT}${REPO}"
if ! mountpoint -q "${ROOT}${REPO}"; then
    mount --bind "${REPO}" "${ROOT}${REPO}"
    MOUNTS+=("${ROOT}${REPO}")
fi
mkdir -p "${ROOT}${OPT}/bin" "${ROOT}${OPT}/distdir"

t=$(date +%s)
lock_sum="$(sha256sum "${REPO}/requirements_lock.txt" | cut -d' ' -f1)"
if [[ "$(cat "${ROOT}${OPT}/requirements.sha256" 2>/dev/null)" != "${lock_sum}" ]]; then
    log "pip install -r requirements_lock.txt into the chroot's system python3"
    in_chroot python3 -m pip install --quiet --break-system-packages --root-user-action=ignore \
        --disable-pip-version-check --require-hashes --only-binary=:all: \
        -r "${REPO}/requirements_lock.txt"
    echo "${lock_sum}" >"${ROOT}${OPT}/requirements.sha256"
    log "pip install took $(elapsed "${t}")"
fi

# Debian's rules_python 0.22 with the offline extensions of bazel/offline/rules_python_overlay
# (MODULE.bazel uses the current pip.parse/python.toolchain API) and one fix: its
# py_proto_library writes to the wrong directory for protos under a strip_import_prefix or in an
# external repository (later rules_python versions fixed this).
rm -rf "${ROOT}${OPT}/rules_python"
cp -r "${ROOT}/usr/share/bazel/rules/python" "${ROOT}${OPT}/rules_python"
cp -r "${REPO}/bazel/offline/rules_python_overlay/." "${ROOT}${OPT}/rules_python/"
python3 - "${ROOT}${OPT}/rules_python/python/private/proto/py_proto_library.bzl" <<'EOF'
import sys

path = sys.argv[1]
text = open(path).read()
old = "            plugin_output = ctx.bin_dir.path,\n"
new = (
    "            plugin_output = proto_info.proto_source_root"
    " if proto_info.proto_source_root.startswith(ctx.bin_dir.path)"
    ' else "/".join([p for p in [ctx.bin_dir.path, proto_info.proto_source_root]'
    ' if p and p != "."]),\n'
)
if text.count(old) != 1:
    sys.exit(f"bazel_ci: {path} changed upstream; the plugin_output fix no longer applies")
open(path, "w").write(text.replace(old, new))
EOF

# The conformance runner: the local binary (hermetic download is for users; see docs/BAZEL.md).
runner="$(CONNECTCONFORMANCE_VERSION="${CONFORMANCE_VERSION}" "${REPO}/tools/install_conformance.sh" | tail -n 1)"
install -m 0755 "${runner}" "${ROOT}${OPT}/bin/connectconformance"
modzip="$(go env GOMODCACHE)/cache/download/connectrpc.com/conformance/@v/${CONFORMANCE_VERSION}.zip"
[[ -f "${modzip}" ]] || (cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download "connectrpc.com/conformance@${CONFORMANCE_VERSION}")
cp "${modzip}" "${ROOT}${OPT}/distdir/"

OFFLINE_FLAGS=(
    --config=offline
    "--override_module=rules_python=${OPT}/rules_python"
    "--distdir=${OPT}/distdir"
    "--repo_env=CONNECTCONFORMANCE_BIN=${OPT}/bin/connectconformance"
)

# bazel_in DIR CMD ARGS...: runs Bazel in DIR inside the chroot; prints and times it.
bazel_in() {
    local dir="$1" cmd="$2" t rc=0
    shift 2
    log "(cd ${dir#"${REPO}/"} && bazel ${cmd} ${OFFLINE_FLAGS[*]} $*)"
    t=$(date +%s)
    BAZEL_STARTED=1
    in_chroot bash -c 'cd "$1" && shift && exec bazel "$@"' _ "${dir}" "${cmd}" \
        "${OFFLINE_FLAGS[@]}" "$@" || rc=$?
    log "bazel ${cmd} $* finished with exit ${rc} in $(elapsed "${t}")"
    return "${rc}"
}

for step in "${steps[@]}"; do
    case "${step}" in
        build)
            bazel_in "${REPO}" build //examples:eliza //...
            bazel_in "${REPO}" test //examples/...
            ;;
        conformance)
            bazel_in "${REPO}" test --test_output=errors //conformance:all
            ;;
        consumer)
            local_offline=()
            for m in protobuf zlib buildozer apple_support; do
                local_offline+=("--override_module=${m}=${REPO}/bazel/offline/${m}")
            done
            bazel_in "${REPO}/tests/bazel_consumer" test "${local_offline[@]}" //...
            ;;
        *)
            echo "bazel_ci: unknown step ${step} (build, conformance, consumer)" >&2
            exit 2
            ;;
    esac
done
log "all steps passed: ${steps[*]}"
