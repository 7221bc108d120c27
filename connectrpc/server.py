"""Public server API: the ASGI application, handler bindings and ``RequestContext``."""

from ._handler import (
    Handler,
    bidi_stream_handler,
    client_stream_handler,
    server_stream_handler,
    unary_handler,
)
from ._server_asgi import ConnectASGIApplication, ServerOptions
from ._server_context import RequestContext

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
