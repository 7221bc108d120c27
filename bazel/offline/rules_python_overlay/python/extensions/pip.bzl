"""Offline `pip` extension: the modern `pip.parse(hub_name = ...)` API over the system Python.

Overlaid on Debian's rules_python 0.22 by tools/bazel_ci.sh. The hub repository has one empty
`py_library` per package of the lock file (`@hub//aiohttp`, `@hub//aiohttp:pkg`): the packages
themselves are installed into the chroot's system Python from the same lock file. Like
rules_python 1.x, it fails on a lock that lists a package twice.
"""

def _normalize(name):
    return name.lower().replace("-", "_").replace(".", "_")

def _hub_impl(rctx):
    names = {}
    for line in rctx.read(rctx.attr.requirements_lock).splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-")) or "==" not in line:
            continue
        name = _normalize(line.split("==", 1)[0].strip())
        if name in names:
            # rules_python 1.x's pip.parse rejects this too ("Attempting to creating a duplicate
            # library"): the lock must be resolved for the hub's one Python version.
            fail("%s lists %s twice; pip.parse needs one version of each package" % (
                rctx.attr.requirements_lock,
                name,
            ))
        names[name] = True
    rctx.file("BUILD.bazel", "")
    for name in names:
        rctx.file("%s/BUILD.bazel" % name, """\
load("@rules_python//python:defs.bzl", "py_library")

py_library(name = "{name}", visibility = ["//visibility:public"])

alias(name = "pkg", actual = ":{name}", visibility = ["//visibility:public"])
""".format(name = name))

_hub = repository_rule(
    implementation = _hub_impl,
    attrs = {"requirements_lock": attr.label(allow_single_file = True)},
)

def _pip_impl(mctx):
    for mod in mctx.modules:
        for parse in mod.tags.parse:
            _hub(name = parse.hub_name, requirements_lock = parse.requirements_lock)

pip = module_extension(
    implementation = _pip_impl,
    tag_classes = {
        "parse": tag_class(attrs = {
            "hub_name": attr.string(mandatory = True),
            "python_version": attr.string(),
            "requirements_lock": attr.label(mandatory = True),
            "extra_pip_args": attr.string_list(),
        }),
    },
)
