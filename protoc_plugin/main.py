"""Entry point of ``protoc-gen-connect_python``: protoc talks to it over stdin/stdout.

protoc writes a serialized ``CodeGeneratorRequest`` to the plugin's stdin and reads a
serialized ``CodeGeneratorResponse`` from its stdout. All the work happens in
:func:`protoc_plugin._generator.generate`; this module only does the I/O.
"""

from __future__ import annotations

import sys

from google.protobuf.compiler import plugin_pb2

from protoc_plugin._generator import generate

__all__ = ["main"]


def main() -> None:
    """Read a ``CodeGeneratorRequest`` from stdin and write the response to stdout."""
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    response = generate(request)
    sys.stdout.buffer.write(response.SerializeToString())
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
