"""Offline stand-in for protobuf's `//bazel:py_proto_library.bzl`.

Debian packages no protobuf Bazel module, so this forwards the label that users load
(`@com_google_protobuf//bazel:py_proto_library.bzl`) to rules_python 0.22's py_proto_library,
which protobuf's rule was split from. See ../../README.md.
"""

load("@rules_python//python:proto.bzl", _py_proto_library = "py_proto_library")

py_proto_library = _py_proto_library
