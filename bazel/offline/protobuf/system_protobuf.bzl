"""Exposes the system protoc and well-known-type .proto files as a repository."""

WELL_KNOWN_TYPES = [
    "any",
    "api",
    "descriptor",
    "duration",
    "empty",
    "field_mask",
    "source_context",
    "struct",
    "timestamp",
    "type",
    "wrappers",
]

_DEPS = {
    "api": ["source_context", "type"],
    "type": ["any", "source_context"],
}

def _system_protobuf_impl(rctx):
    # The .proto files live under src/ and are stripped to google/protobuf/... (as in the real
    # protobuf repository), so that Python code generated for them by py_proto_library lands
    # under _virtual_imports/ and never shadows the runtime's google.protobuf package.
    protoc = rctx.which("protoc")
    if not protoc:
        fail("offline protobuf stub: protoc is not on PATH (apt-get install protobuf-compiler)")
    rctx.symlink(protoc, "protoc")
    include = rctx.path(rctx.os.environ.get("PROTOBUF_INCLUDE", "/usr/include"))
    build = ['load("@rules_proto//proto:defs.bzl", "proto_library")', ""]
    build.append('exports_files(["protoc"], visibility = ["//visibility:public"])')
    for name in WELL_KNOWN_TYPES:
        src = include.get_child("google").get_child("protobuf").get_child(name + ".proto")
        if not src.exists:
            fail("offline protobuf stub: %s is missing (apt-get install libprotobuf-dev)" % src)
        rctx.symlink(src, "src/google/protobuf/%s.proto" % name)
        build.append("""
proto_library(
    name = "{name}_proto",
    srcs = ["src/google/protobuf/{name}.proto"],
    strip_import_prefix = "src",
    visibility = ["//visibility:public"],
    deps = {deps},
)""".format(name = name, deps = repr([":%s_proto" % d for d in _DEPS.get(name, [])])))
    rctx.file("BUILD.bazel", "\n".join(build) + "\n")

system_protobuf = repository_rule(
    implementation = _system_protobuf_impl,
    environ = ["PROTOBUF_INCLUDE", "PATH"],
    local = True,
)
