"""Offline `python` extension: accepts the modern `python.toolchain(...)` tag and registers nothing.

Overlaid on Debian's rules_python 0.22 by tools/bazel_ci.sh. The interpreter is the system
python3 found by @bazel_tools//tools/python:autodetecting_toolchain, which rules_python's own
MODULE.bazel registers; python-build-standalone downloads are not reachable offline.
"""

def _empty_repo_impl(rctx):
    rctx.file("BUILD.bazel", "")

_empty_repo = repository_rule(implementation = _empty_repo_impl)

def _python_impl(_mctx):
    # rules_python's MODULE.bazel does use_repo(python, "pythons_hub").
    _empty_repo(name = "pythons_hub")

python = module_extension(
    implementation = _python_impl,
    tag_classes = {
        "toolchain": tag_class(attrs = {
            "python_version": attr.string(mandatory = True),
            "is_default": attr.bool(),
            "configure_coverage_tool": attr.bool(),
            "ignore_root_user_error": attr.bool(),
        }),
    },
)
