"""connect-python: the Connect RPC protocol for Python (https://connectrpc.com).

Public modules: ``connectrpc.client`` (the async client and its transports),
``connectrpc.server`` (the ASGI application and handler bindings), ``connectrpc.errors``,
``connectrpc.headers``, ``connectrpc.unary``, ``connectrpc.streams``, ``connectrpc.method``
(what generated code describes RPCs with), ``connectrpc.testing``, ``connectrpc.interceptors``,
``connectrpc.cors``, ``connectrpc.health`` (gRPC health checking),
``connectrpc.reflection`` (gRPC server reflection), ``connectrpc.otel`` (OpenTelemetry, the
``otel`` extra), ``connectrpc.validate`` (protovalidate, the ``validate`` extra) and
``connectrpc.hypercorn``.
"""

from ._version import __version__

__all__ = ["__version__"]
