"""Public server API: the ASGI application, handler bindings and ``RequestContext``."""

from connectrpc._server.asgi import ConnectASGIApplication, ServerOptions
from connectrpc._server.context import RequestContext
from connectrpc._server.handler import (
    Handler,
    bidi_stream_handler,
    client_stream_handler,
    server_stream_handler,
    unary_handler,
)

__all__ = [
    "ConnectASGIApplication",
    "Handler",
    "RequestContext",
    "ServerOptions",
    "bidi_stream_handler",
    "client_stream_handler",
    "server_stream_handler",
    "unary_handler",
]
