"""Implementation of py_connect_library: an aspect over proto_library plus a merging rule.

The aspect visits the proto_library targets named in `deps` and runs protoc with
protoc-gen-connect_python (described by the proto_lang_toolchain //bazel:connect_python_toolchain)
as one action per proto_library. The rule merges what the aspect produced into a PyInfo that
depends on the matching py_proto_library and on the connectrpc runtime.

Output layout: `foo/v1/bar.proto` gives `foo/v1/bar_connect.py`, in the same directory and under
the same import root as the `bar_pb2.py` that py_proto_library generates for the same
proto_library, so that `from foo.v1 import bar_connect, bar_pb2` works.

The plugin writes a module only for files that declare a service. Bazel needs every output to
be declared before the action runs, so the aspect declares one `_connect.py` per .proto and
lets protoc write into a directory; a second, tiny action then copies each module out of that
directory, or writes a placeholder module for a .proto without services.
"""

load("@rules_proto//proto:defs.bzl", "ProtoInfo")
load("@rules_proto//proto:proto_common.bzl", "ProtoLangToolchainInfo", "proto_common")
load("@rules_python//python:defs.bzl", "PyInfo")

ConnectPyInfo = provider(
    doc = "The _connect.py modules generated for one proto_library (direct sources only).",
    fields = {
        "sources": "depset[File]: the generated _connect.py modules",
        "imports": "depset[str]: import roots to add for the generated modules",
    },
)

_PLACEHOLDER = "# {src} declares no service: protoc-gen-connect_python generated nothing for it.\\n"

def _import_path(src, proto_source_root):
    """The path protoc knows `src` by (`foo/v1/bar.proto`), relative to its source root."""
    if proto_source_root in ("", "."):
        path = src.path
        if path.startswith("external/"):
            path = path.split("/", 2)[2]
        return path
    return src.path[len(proto_source_root) + 1:]

def _import_root(ctx, out, relative):
    """The PyInfo.imports entry (runfiles-relative) under which `relative` is importable."""
    root = out.short_path[:-len(relative)].rstrip("/")
    if root.startswith("../"):
        return root[len("../"):]
    workspace = ctx.workspace_name or "_main"
    return workspace + "/" + root if root else workspace

def _connect_py_aspect_impl(target, ctx):
    proto_info = target[ProtoInfo]
    toolchain = ctx.attr._connect_toolchain[ProtoLangToolchainInfo]
    if not proto_info.direct_sources:
        return [ConnectPyInfo(sources = depset(), imports = depset())]

    outputs = proto_common.declare_generated_files(
        actions = ctx.actions,
        proto_info = proto_info,
        extension = "_connect.py",
    )

    # protoc writes into this directory; only files with services appear in it.
    gen_dir = ctx.actions.declare_directory("_connect_py_gen/" + ctx.label.name)
    proto_common.compile(
        actions = ctx.actions,
        proto_info = proto_info,
        proto_lang_toolchain_info = toolchain,
        generated_files = [gen_dir],
        plugin_output = gen_dir.path,
        experimental_progress_message = "Generating Connect Python code for %{label}",
    )

    imports = []
    for src, out in zip(proto_info.direct_sources, outputs):
        relative = _import_path(src, proto_info.proto_source_root)[:-len(".proto")] + "_connect.py"
        imports.append(_import_root(ctx, out, relative))
        ctx.actions.run_shell(
            inputs = [gen_dir],
            outputs = [out],
            command = 'if [ -f "$1/$2" ]; then cp "$1/$2" "$3"; else printf "$4" > "$3"; fi',
            arguments = [gen_dir.path, relative, out.path, _PLACEHOLDER.format(src = src.short_path)],
            mnemonic = "ConnectPyCopy",
            progress_message = "Collecting %s" % out.short_path,
        )

    return [ConnectPyInfo(
        sources = depset(outputs),
        imports = depset(imports),
    )]

connect_py_aspect = aspect(
    implementation = _connect_py_aspect_impl,
    attrs = {
        "_connect_toolchain": attr.label(
            default = Label("//bazel:connect_python_toolchain"),
            providers = [ProtoLangToolchainInfo],
        ),
    },
    required_providers = [ProtoInfo],
    provides = [ConnectPyInfo],
)

def _py_connect_library_impl(ctx):
    infos = [dep[ConnectPyInfo] for dep in ctx.attr.deps]
    sources = depset(transitive = [info.sources for info in infos])
    runtime = ctx.attr._connect_toolchain[ProtoLangToolchainInfo].runtime
    py_deps = [runtime] + ctx.attr.py_deps

    transitive_sources = depset(
        transitive = [sources] + [dep[PyInfo].transitive_sources for dep in py_deps],
    )
    imports = depset(
        transitive = [info.imports for info in infos] + [dep[PyInfo].imports for dep in py_deps],
    )
    runfiles = ctx.runfiles(transitive_files = sources)
    for dep in py_deps:
        runfiles = runfiles.merge(dep[DefaultInfo].default_runfiles)
    return [
        DefaultInfo(files = sources, runfiles = runfiles),
        PyInfo(transitive_sources = transitive_sources, imports = imports),
    ]

py_connect_library = rule(
    implementation = _py_connect_library_impl,
    doc = """Generates Connect clients and service bases (`*_connect.py`) for proto_library targets.

Each `foo/v1/bar.proto` in the direct sources of `deps` becomes `foo/v1/bar_connect.py`. The
generated modules import the `_pb2` modules of their messages, so list the py_proto_library of
the same proto_library targets in `py_deps`; the connectrpc runtime is added automatically.
""",
    attrs = {
        "deps": attr.label_list(
            doc = "proto_library targets whose services get Connect code.",
            providers = [ProtoInfo],
            aspects = [connect_py_aspect],
        ),
        "py_deps": attr.label_list(
            doc = "The py_proto_library (or any PyInfo library) for the messages the services use.",
            providers = [PyInfo],
        ),
        "_connect_toolchain": attr.label(
            default = Label("//bazel:connect_python_toolchain"),
            providers = [ProtoLangToolchainInfo],
        ),
    },
    provides = [PyInfo],
)
