"""Public server API: the ASGI and WSGI applications, handler bindings and ``RequestContext``.

``ConnectASGIApplication`` runs ``async def`` handlers (``unary_handler`` ...) under an ASGI
server, with every protocol; ``ConnectWSGIApplication`` runs plain functions
(``sync_unary_handler`` ...) under a WSGI server, with Connect and gRPC-Web over HTTP/1.1.
"""

from connectrpc._server.asgi import ConnectASGIApplication
from connectrpc._server.context import RequestContext
from connectrpc._server.handler import (
    Handler,
    bidi_stream_handler,
    client_stream_handler,
    server_stream_handler,
    sync_bidi_stream_handler,
    sync_client_stream_handler,
    sync_server_stream_handler,
    sync_unary_handler,
    unary_handler,
)
from connectrpc._server.options import ServerOptions
from connectrpc._server.wsgi import ConnectWSGIApplication

__all__ = [
    "ConnectASGIApplication",
    "ConnectWSGIApplication",
    "Handler",
    "RequestContext",
    "ServerOptions",
    "bidi_stream_handler",
    "client_stream_handler",
    "server_stream_handler",
    "sync_bidi_stream_handler",
    "sync_client_stream_handler",
    "sync_server_stream_handler",
    "sync_unary_handler",
    "unary_handler",
]
