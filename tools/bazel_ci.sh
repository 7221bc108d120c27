#!/usr/bin/env bash
# Build and test the Bazel rules of connect-python with a real Bazel, offline.
#
#   tools/bazel_ci.sh                 # docs, build, conformance, consumer
#   tools/bazel_ci.sh build           # only the build step
#   tools/bazel_ci.sh docs consumer   # some of the steps
#
# Steps (each Bazel step is a real Bazel invocation; any Bazel failure fails the script):
#   docs         the snippet of docs/BAZEL.md and README.md (MODULE.bazel, .bazelrc, BUILD.bazel,
#                greet.proto, greet_client.py) is byte for byte the consumer workspace
#                (tests/bazel_consumer); no Bazel, no root needed
#   build        bazel build //examples:eliza //...  and  bazel test //examples/...
#   conformance  bazel test //conformance:all   (the official runner, client and server mode)
#   consumer     tests/bazel_consumer: the documented snippet as a workspace, connect_python
#                given with --override_module, plus a py_test (test/) that imports the
#                generated code
#   registry     the consumer and //examples:eliza against Bazel modules at the registry
#                versions; run through tools/bazel_registry_check.sh, which sets its inputs
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
# Needs root (debootstrap, chroot, mount), except for the docs step alone. Mounts are undone on
# exit.
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
[[ ${#steps[@]} -gt 0 ]] || steps=(docs build conformance consumer)
has_step() {
    local step
    for step in "${steps[@]}"; do [[ "${step}" == "$1" ]] && return 0; done
    return 1
}

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

# --- docs: the documented snippet is the consumer workspace, byte for byte ------------------
check_docs() {
    python3 - "${REPO}" <<'EOF'
import re
import sys
from pathlib import Path

repo = Path(sys.argv[1])
consumer = "tests/bazel_consumer/"
# Each block is preceded by <!-- tests/bazel_consumer/<file> --> and must equal that file.
block = re.compile(r"<!-- (tests/bazel_consumer/\S+) -->\n```[a-z]*\n(.*?)^```$", re.S | re.M)
snippet = {"MODULE.bazel", ".bazelrc", "BUILD.bazel"}
wanted = {
    "docs/BAZEL.md": snippet | {"proto/greet/v1/greet.proto", "greet_client.py"},
    "README.md": snippet,
}
errors = []
for doc, files in wanted.items():
    found = set()
    for match in block.finditer((repo / doc).read_text()):
        path, body = match.group(1), match.group(2)
        found.add(path.removeprefix(consumer))
        if not (repo / path).is_file():
            errors.append(f"{doc}: {path} does not exist")
        elif (repo / path).read_text() != body:
            errors.append(f"{doc}: the block marked {path} is not that file, byte for byte")
    errors += [f"{doc}: no block marked <!-- {consumer}{f} -->" for f in sorted(files - found)]
for error in errors:
    print(f"bazel_ci: docs: {error}", file=sys.stderr)
if errors:
    sys.exit(1)
print(f"bazel_ci: docs: the snippets of {', '.join(wanted)} are {consumer} byte for byte")
EOF
}
if has_step docs; then
    check_docs
    remaining=()
    for step in "${steps[@]}"; do [[ "${step}" == docs ]] || remaining+=("${step}"); done
    steps=("${remaining[@]}")
    [[ ${#steps[@]} -gt 0 ]] || exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
    echo "bazel_ci: needs root (debootstrap, chroot, mount)" >&2
    exit 1
fi

# --- mounts, undone on exit ------------------------------------------------------------------
MOUNTS=()
REGISTRY_OUTPUT_BASES=()
cleanup() {
    local i dir
    # Stop the Bazel servers this run started, so that nothing keeps the bind mount busy.
    if [[ -n "${BAZEL_STARTED:-}" ]]; then
        for dir in "${REPO}" "${REPO}/tests/bazel_consumer"; do
            in_chroot bash -c 'cd "$1" && bazel shutdown' _ "${dir}" >/dev/null 2>&1 || true
        done
        for dir in "${REGISTRY_OUTPUT_BASES[@]}"; do
            in_chroot bash -c 'cd "$1" && bazel --output_base="$2" shutdown' _ "${REPO}" "${dir}" \
                >/dev/null 2>&1 || true
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

# Inputs of the Debian steps (build, conformance, consumer): Python packages, the rules_python
# overlay, the conformance runner.
prepare_debian_inputs() {
    local t lock_sum runner modzip
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

    # Debian's rules_python 0.22 with the offline extensions of
    # bazel/offline/rules_python_overlay (MODULE.bazel uses the current pip.parse/python.toolchain
    # API) and one fix: its py_proto_library writes to the wrong directory for protos under a
    # strip_import_prefix or in an external repository (later rules_python versions fixed this).
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
}

OFFLINE_FLAGS=(
    --config=offline
    "--override_module=rules_python=${OPT}/rules_python"
    "--distdir=${OPT}/distdir"
    "--repo_env=CONNECTCONFORMANCE_BIN=${OPT}/bin/connectconformance"
)

# bazel_in DIR CMD ARGS...: runs Bazel in DIR inside the chroot with the startup options in
# STARTUP and the flags in FLAGS; prints and times it.
STARTUP=()
FLAGS=()
bazel_in() {
    local dir="$1" cmd="$2" t rc=0
    shift 2
    log "(cd ${dir} && bazel ${STARTUP[*]} ${cmd} ${FLAGS[*]} $*)"
    t=$(date +%s)
    BAZEL_STARTED=1
    in_chroot bash -c 'cd "$1" && shift && exec bazel "$@"' _ "${dir}" \
        "${STARTUP[@]}" "${cmd}" "${FLAGS[@]}" "$@" || rc=$?
    log "bazel ${cmd} $* finished with exit ${rc} in $(elapsed "${t}")"
    return "${rc}"
}

# --- registry: the user's setup with Bazel modules at the registry versions --------------------
# Inputs (tools/bazel_registry_check.sh sets and checks them):
#   REGISTRY_MODULES  a directory with one Bazel module per subdirectory, named by module
#                     (rules_python, rules_proto, protobuf, and what they need)
#   REGISTRY_PROTOC   the official protoc binary of the protobuf release
#   REGISTRY_PYTHON   the prefix of a CPython 3.12 installation (python-build-standalone's
#                     layout: bin/python3, lib/python3.12, include)
# Every module comes through --override_module; the registry is an empty local directory, so
# nothing is fetched from the Bazel Central Registry. What stands in for upstream parts:
#   - protobuf's C++ build (abseil-cpp is not in the module set): //:protoc is the official
#     binary of the release, and the two C++ tools the Python runtime's build runs have
#     stand-ins (see below);
#   - modules protobuf and rules_python declare but this build never loads are empty stubs
#     (REGISTRY_STUBS) unless REGISTRY_MODULES has them; modules missing from REGISTRY_MODULES
#     fall back to Debian's copies (its /etc/bazel/bazelrc overrides);
#   - the hermetic Python 3.12 of rules_python (python-build-standalone, not reachable here) is
#     REGISTRY_PYTHON, given with --override_repository under the repository name rules_python
#     gives it, with the BUILD file rules_python writes for it.
REGISTRY_STUBS=(abseil-cpp jsoncpp rules_fuzzing rules_jvm_external rules_kotlin stardoc zlib)
registry_check() {
    local reg="${OPT}/registry" mod name rc py_repo py_version
    : "${REGISTRY_MODULES:?}" "${REGISTRY_PROTOC:?}" "${REGISTRY_PYTHON:?}"
    rm -rf "${ROOT}${reg}/modules" "${ROOT}${reg}/stubs" "${ROOT}${reg}/empty_registry"
    mkdir -p "${ROOT}${reg}/modules" "${ROOT}${reg}/stubs" "${ROOT}${reg}/empty_registry"
    log "copying the modules of ${REGISTRY_MODULES} into the chroot"
    cp -a "${REGISTRY_MODULES}/." "${ROOT}${reg}/modules/"

    # protobuf: its C++ build is replaced by stand-ins. //:protoc and the compiler package's
    # :protoc_minimal are the official protoc binary; //editions:internal_defaults_escape (it
    # escapes the edition defaults embedded into the Python runtime) is a Python script that
    # writes what the C++ tool writes (absl::CEscape or base64 of the same bytes).
    install -m 0755 "${REGISTRY_PROTOC}" "${ROOT}${reg}/modules/protobuf/protoc_prebuilt.exe"
    cat >"${ROOT}${reg}/modules/protobuf/editions/internal_defaults_escape.sh" <<'EOF'
#!/bin/sh
exec python3 -c "$(cat <<'PY'
import base64
import sys

data = sys.stdin.buffer.read()
if "--encoding=base64" in sys.argv[1:]:
    sys.stdout.write(base64.b64encode(data).decode())
else:
    named = {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x22: '\\"', 0x27: "\\'", 0x5C: "\\\\"}
    sys.stdout.write(
        "".join(named.get(b, chr(b) if 0x20 <= b < 0x7F else "\\%03o" % b) for b in data)
    )
PY
)" "$@"
EOF
    python3 - "${ROOT}${reg}/modules/protobuf" <<'EOF'
import re
import sys
from pathlib import Path

root = Path(sys.argv[1])
EXECUTABLE = """
# bazel_registry_check: a stand-in for protobuf's C++ build.
genrule(
    name = "{name}",
    srcs = ["{src}"],
    outs = ["{name}_stand_in"],
    cmd = "cp $< $@",
    executable = True,
    visibility = ["//visibility:public"],
)
"""
stand_ins = {
    ("BUILD.bazel", "protoc"): EXECUTABLE.format(name="protoc", src="protoc_prebuilt.exe"),
    ("src/google/protobuf/compiler/BUILD.bazel", "protoc_minimal"): """
# bazel_registry_check: a stand-in for protobuf's C++ build.
alias(
    name = "protoc_minimal",
    actual = "//:protoc",
    visibility = ["//:__subpackages__"],
)
""",
    ("editions/BUILD", "internal_defaults_escape"): EXECUTABLE.format(
        name="internal_defaults_escape", src="internal_defaults_escape.sh"
    ),
}
for (build, name), rule in stand_ins.items():
    path = root / build
    text = path.read_text()
    text, count = re.subn(
        r'(cc_binary\(\n\s+name = )"%s",' % re.escape(name), r'\1"%s_from_source",' % name, text
    )
    if count != 1:
        sys.exit(f"bazel_ci: no cc_binary {name} in {path}")
    path.write_text(text + rule)
EOF

    # Stubs for what the build never loads.
    for name in "${REGISTRY_STUBS[@]}" buildozer apple_support; do
        [[ -d "${ROOT}${reg}/modules/${name}" ]] && continue
        mkdir -p "${ROOT}${reg}/stubs/${name}"
        if [[ -d "${REPO}/bazel/offline/${name}" ]]; then
            cp -r "${REPO}/bazel/offline/${name}/." "${ROOT}${reg}/stubs/${name}/"
        else
            echo "module(name = \"${name}\")" >"${ROOT}${reg}/stubs/${name}/MODULE.bazel"
            : >"${ROOT}${reg}/stubs/${name}/BUILD.bazel"
        fi
    done

    # Python 3.12 at its own prefix (its RUNPATH may be absolute), laid out as rules_python's
    # python_repository leaves a python-build-standalone archive.
    if [[ ! -x "${ROOT}${REGISTRY_PYTHON}/bin/python3" ]]; then
        log "copying ${REGISTRY_PYTHON} into the chroot"
        mkdir -p "${ROOT}${REGISTRY_PYTHON}"
        cp -a "${REGISTRY_PYTHON}/." "${ROOT}${REGISTRY_PYTHON}/"
    fi
    ln -sfn bin/python3 "${ROOT}${REGISTRY_PYTHON}/python"
    : >"${ROOT}${REGISTRY_PYTHON}/REPO.bazel"
    echo "# rules_python interpreter repository (tools/bazel_ci.sh registry)" \
        >"${ROOT}${REGISTRY_PYTHON}/STANDALONE_INTERPRETER"
    py_version="$(in_chroot "${REGISTRY_PYTHON}/bin/python3" -c 'import platform; print(platform.python_version())')"
    cat >"${ROOT}${REGISTRY_PYTHON}/BUILD.bazel" <<EOF
# As rules_python's python_repository writes it for a python-build-standalone archive.
load("@rules_python//python/private:hermetic_runtime_repo_setup.bzl", "define_hermetic_runtime_toolchain_impl")

package(default_visibility = ["//visibility:public"])

define_hermetic_runtime_toolchain_impl(
    name = "define_runtime",
    extra_files_glob_include = ["lib/**"],
    extra_files_glob_exclude = ["**/__pycache__/*.pyc", "**/__pycache__/*.pyo"],
    python_version = "${py_version}",
    python_bin = "bin/python3",
    coverage_tool = None,
)
EOF
    # Bazel 7 spells canonical names with "~" (Bazel 8: "+").
    py_repo="rules_python~~python~python_3_12_x86_64-unknown-linux-gnu"

    rc="${reg}/registry.bazelrc"
    {
        echo "common --noenable_workspace"
        echo "common --lockfile_mode=off"
        echo "common --show_progress_rate_limit=60"
        echo "common --registry=file://${reg}/empty_registry"
        for mod in "${ROOT}${reg}/modules"/* "${ROOT}${reg}/stubs"/*; do
            echo "common --override_module=$(basename "${mod}")=${mod#"${ROOT}"}"
        done
        echo "common --override_repository=${py_repo}=${REGISTRY_PYTHON}"
        # pip inside rules_python's whl_library: trust the chroot's CA bundle.
        echo "common --repo_env=RULES_PYTHON_PIP_ISOLATED=false"
        echo "common --repo_env=PIP_CERT=/etc/ssl/certs/ca-certificates.crt"
        echo "test --test_output=all"
    } >"${ROOT}${rc}"
    log "modules: $(cd "${ROOT}${reg}/modules" && echo *); stubs: $(cd "${ROOT}${reg}/stubs" && echo *)"

    FLAGS=()
    REGISTRY_OUTPUT_BASES=("${reg}/out/consumer" "${reg}/out/connect_python")
    STARTUP=("--bazelrc=${rc}" "--output_base=${reg}/out/consumer")
    # test/ uses the snippet's targets, which are private to its package.
    bazel_in "${REPO}/tests/bazel_consumer" test "--override_module=connect_python=${REPO}" \
        --nocheck_visibility //...
    STARTUP=("--bazelrc=${rc}" "--output_base=${reg}/out/connect_python")
    bazel_in "${REPO}" build //examples:eliza
    bazel_in "${REPO}" test //examples:eliza_demo_test
}

if has_step build || has_step conformance || has_step consumer; then
    prepare_debian_inputs
fi

for step in "${steps[@]}"; do
    STARTUP=()
    FLAGS=("${OFFLINE_FLAGS[@]}")
    case "${step}" in
        build)
            bazel_in "${REPO}" build //examples:eliza //...
            bazel_in "${REPO}" test //examples/...
            ;;
        conformance)
            bazel_in "${REPO}" test --test_output=errors //conformance:all
            ;;
        consumer)
            # The workspace is the documented snippet; what makes it build here comes from an
            # extra rc file: connect_python from this checkout, the offline stand-ins.
            rc="${OPT}/consumer.bazelrc"
            {
                echo "common:offline --noenable_workspace"
                echo "common:offline --lockfile_mode=off"
                echo "common:offline --override_module=connect_python=${REPO}"
                # test/ uses the snippet's targets, which are private to its package.
                echo "common:offline --nocheck_visibility"
                for m in protobuf zlib buildozer apple_support; do
                    echo "common:offline --override_module=${m}=${REPO}/bazel/offline/${m}"
                done
            } >"${ROOT}${rc}"
            STARTUP=("--bazelrc=${rc}")
            bazel_in "${REPO}/tests/bazel_consumer" test //...
            ;;
        registry)
            registry_check
            ;;
        *)
            echo "bazel_ci: unknown step ${step} (docs, build, conformance, consumer, registry)" >&2
            exit 2
            ;;
    esac
done
log "all steps passed: ${steps[*]}"
