"""The Connect conformance runner (connectconformance) and its harness protos, for Bazel.

Module extension `conformance` (a dev dependency of connect_python) creates two repositories:

* `@connectconformance//:connectconformance`: the runner. By default the release archive of the
  pinned version for the host platform, checked against `runner_sha256`. With
  `--repo_env=CONNECTCONFORMANCE_BIN=/abs/path/to/connectconformance` (for example the binary
  that `go install connectrpc.com/conformance/cmd/connectconformance@v1.0.5` leaves in
  `$(go env GOPATH)/bin`) that binary is used instead and nothing is downloaded.
* `@connectconformance_protos//:conformance_proto`: the harness `.proto` files, taken from the
  connectrpc.com/conformance Go module zip (checked against `proto_sha256`; `--distdir` holding
  `<version>.zip` serves it offline). They are staged under `connectrpc_conformance/v1/`, with
  their imports rewritten to match: the generated Python package would otherwise be
  `connectrpc.conformance.v1`, which collides with our runtime package `connectrpc`. Only file
  paths change; the proto package stays `connectrpc.conformance.v1`, so message names, Any type
  URLs and RPC paths are exactly those the runner uses.

Rule `connectconformance_test` runs the runner in client or server mode against a program.
"""

_RELEASE_URL = "https://github.com/connectrpc/conformance/releases/download/{version}/connectconformance-{version}-{platform}.tar.gz"
_MODULE_ZIP_URL = "https://proxy.golang.org/connectrpc.com/conformance/@v/{version}.zip"
_PROTO_DIR = "connectrpc/conformance/v1"
_STAGED_DIR = "connectrpc_conformance/v1"

def _host_platform(rctx):
    os = rctx.os.name.lower()
    arch = rctx.os.arch.lower()
    if os.startswith("linux"):
        os = "Linux"
        arch = "aarch64" if arch in ("aarch64", "arm64") else "x86_64"
    elif os.startswith("mac"):
        os = "Darwin"
        arch = "arm64" if arch in ("aarch64", "arm64") else "x86_64"
    else:
        fail("connectconformance: no release archive for %s/%s; set CONNECTCONFORMANCE_BIN" % (os, arch))
    return "%s-%s" % (os, arch)

def _runner_repo_impl(rctx):
    local = rctx.os.environ.get("CONNECTCONFORMANCE_BIN", "")
    if local:
        binary = rctx.path(local)
        if not binary.exists:
            fail("CONNECTCONFORMANCE_BIN=%s does not exist" % local)
        rctx.symlink(binary, "connectconformance")
    else:
        platform = _host_platform(rctx)
        sha256 = rctx.attr.runner_sha256.get(platform, "")
        result = rctx.download_and_extract(
            url = _RELEASE_URL.format(version = rctx.attr.version, platform = platform),
            sha256 = sha256,
        )
        if not sha256:
            # buildifier: disable=print
            print("connectconformance %s (%s): no sha256 pinned; the archive downloaded has sha256 %s" % (
                rctx.attr.version,
                platform,
                result.sha256,
            ))
    rctx.file("BUILD.bazel", """\
exports_files(["connectconformance"], visibility = ["//visibility:public"])
""")

_runner_repo = repository_rule(
    implementation = _runner_repo_impl,
    attrs = {
        "version": attr.string(mandatory = True),
        "runner_sha256": attr.string_dict(),
    },
    environ = ["CONNECTCONFORMANCE_BIN"],
)

_PROTOS_BUILD = """\
load("@rules_proto//proto:defs.bzl", "proto_library")

# The Connect conformance harness protos (connectrpc.com/conformance {version}), staged under
# {staged}/ with their imports rewritten; see @connect_python//bazel:conformance.bzl.
proto_library(
    name = "conformance_proto",
    srcs = {srcs},
    visibility = ["//visibility:public"],
    deps = [
        "@com_google_protobuf//:any_proto",
        "@com_google_protobuf//:empty_proto",
        "@com_google_protobuf//:struct_proto",
    ],
)
"""

def _protos_repo_impl(rctx):
    version = rctx.attr.version
    rctx.download_and_extract(
        url = _MODULE_ZIP_URL.format(version = version),
        sha256 = rctx.attr.proto_sha256,
        type = "zip",
        stripPrefix = "connectrpc.com/conformance@%s/proto" % version,
        output = "upstream",
    )
    srcs = []
    for proto in rctx.path("upstream/" + _PROTO_DIR).readdir():
        if not proto.basename.endswith(".proto"):
            continue
        content = rctx.read(proto).replace(
            'import "%s/' % _PROTO_DIR,
            'import "%s/' % _STAGED_DIR,
        )
        rctx.file("%s/%s" % (_STAGED_DIR, proto.basename), content)
        srcs.append("%s/%s" % (_STAGED_DIR, proto.basename))
    if not srcs:
        fail("connectconformance_protos: no .proto files in the %s module zip" % version)
    rctx.delete("upstream")
    rctx.file(
        "BUILD.bazel",
        _PROTOS_BUILD.format(version = version, staged = _STAGED_DIR, srcs = repr(sorted(srcs))),
    )

_protos_repo = repository_rule(
    implementation = _protos_repo_impl,
    attrs = {
        "version": attr.string(mandatory = True),
        "proto_sha256": attr.string(mandatory = True),
    },
)

def _conformance_impl(mctx):
    runners = [tag for mod in mctx.modules for tag in mod.tags.runner]
    if len(runners) != 1:
        fail("conformance: exactly one conformance.runner(...) tag is expected, got %d" % len(runners))
    tag = runners[0]
    _runner_repo(
        name = "connectconformance",
        version = tag.version,
        runner_sha256 = tag.runner_sha256,
    )
    _protos_repo(
        name = "connectconformance_protos",
        version = tag.version,
        proto_sha256 = tag.proto_sha256,
    )

conformance = module_extension(
    implementation = _conformance_impl,
    tag_classes = {
        "runner": tag_class(attrs = {
            "version": attr.string(mandatory = True, doc = "connectrpc.com/conformance version, e.g. v1.0.5"),
            "proto_sha256": attr.string(mandatory = True, doc = "sha256 of the Go module zip"),
            "runner_sha256": attr.string_dict(doc = "sha256 of the release archive, per platform (e.g. Linux-x86_64)"),
        }),
    },
)

def _shell_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"

def _connectconformance_test_impl(ctx):
    runner = ctx.executable._runner
    program = ctx.executable.program
    args = [
        "--mode",
        ctx.attr.mode,
        "--conf",
        ctx.file.config.short_path,
    ]
    if ctx.file.known_failing:
        args += ["--known-failing", "@" + ctx.file.known_failing.short_path]
    if ctx.file.known_flaky:
        args += ["--known-flaky", "@" + ctx.file.known_flaky.short_path]
    args += ctx.attr.runner_args
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(
        output = script,
        is_executable = True,
        content = """\
#!/usr/bin/env bash
# Runs the Connect conformance runner in {mode} mode against {program}.
set -euo pipefail
program="$PWD/{program}"
exec {runner} {args} -- "$program"
""".format(
            mode = ctx.attr.mode,
            program = program.short_path,
            runner = _shell_quote(runner.short_path),
            args = " ".join([_shell_quote(a) for a in args]),
        ),
    )
    files = [runner, ctx.file.config] + [
        f
        for f in [ctx.file.known_failing, ctx.file.known_flaky]
        if f
    ]
    runfiles = ctx.runfiles(files = files).merge(ctx.attr.program[DefaultInfo].default_runfiles)
    return [DefaultInfo(executable = script, runfiles = runfiles)]

connectconformance_test = rule(
    implementation = _connectconformance_test_impl,
    doc = "Runs the official Connect conformance runner against `program` (a client or a server).",
    test = True,
    attrs = {
        "mode": attr.string(mandatory = True, values = ["client", "server"]),
        "program": attr.label(mandatory = True, executable = True, cfg = "target"),
        "config": attr.label(mandatory = True, allow_single_file = [".yaml", ".yml"]),
        "known_failing": attr.label(allow_single_file = True),
        "known_flaky": attr.label(allow_single_file = True),
        "runner_args": attr.string_list(doc = "Extra connectconformance flags, e.g. [\"-v\"]."),
        "_runner": attr.label(
            default = Label("@connectconformance//:connectconformance"),
            executable = True,
            allow_single_file = True,
            cfg = "target",
        ),
    },
)
