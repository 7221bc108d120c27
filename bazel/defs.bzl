"""Public Bazel API of connect-python.

    load("@connect_python//bazel:defs.bzl", "py_connect_library")

    proto_library(name = "eliza_proto", srcs = ["eliza/v1/eliza.proto"])
    py_proto_library(name = "eliza_py_pb2", deps = [":eliza_proto"])
    py_connect_library(
        name = "eliza_connect_py",
        deps = [":eliza_proto"],
        py_deps = [":eliza_py_pb2"],
    )

See docs/BAZEL.md.
"""

load(
    "//bazel/private:py_connect_library.bzl",
    _ConnectPyInfo = "ConnectPyInfo",
    _py_connect_library = "py_connect_library",
)

py_connect_library = _py_connect_library
ConnectPyInfo = _ConnectPyInfo
