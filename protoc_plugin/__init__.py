"""``protoc-gen-connect_python``: generates Connect clients and servers for connectrpc.

For every ``.proto`` file with services, the plugin writes ``<name>_connect.py`` next to the
``<name>_pb2.py`` module that protoc's built-in Python generator writes, so run both::

    pip install 'connect-python[compiler]'   # installs the protoc-gen-connect_python script
    protoc -I proto \\
        --python_out=gen --pyi_out=gen \\
        --connect_python_out=gen \\
        proto/eliza/v1/eliza.proto

protoc finds the plugin on ``PATH`` by its name; to point at it explicitly add
``--plugin=protoc-gen-connect_python=/path/to/protoc-gen-connect_python``. Options are
passed with ``--connect_python_opt=line_length=100`` (the width to lay the code out for;
default 88, ruff's and black's default) and ``--connect_python_opt=flavor=sync`` (``async``:
only the asyncio client, service base and ASGI app; ``sync``: only the blocking client,
service base and WSGI app; ``both``, the default: all of them).

With buf, use it as a local plugin in ``buf.gen.yaml``::

    version: v2
    plugins:
      - remote: buf.build/protocolbuffers/python
        out: gen
      - remote: buf.build/protocolbuffers/pyi
        out: gen
      - local: protoc-gen-connect_python
        out: gen
        # opt: [line_length=100, flavor=sync]

The generated module imports the messages as ``import eliza.v1.eliza_pb2``, so the output
directory (``gen`` above) must be importable (on ``sys.path``, or the root of a package).
See :mod:`protoc_plugin._generator` for the layout of the generated code.
"""

__all__: list[str] = []
