"""CORS, so that browser pages on other origins can call the service.

Wrap the ASGI application::

    from connectrpc.cors import CORSMiddleware

    app = CORSMiddleware(
        ElizaServiceASGIApplication(service),
        allow_origins=["https://app.example.com"],
        allow_headers=["x-request-id"],  # the application's own request headers
        expose_headers=["eliza-version"],  # and response headers script may read
    )

``CORSWSGIMiddleware`` takes the same options and wraps a WSGI application.

The header lists are public too, for use with another framework's CORS support (Starlette's
``CORSMiddleware`` takes them as they are).
"""

from connectrpc._protocol.cors import (
    ALLOWED_HEADERS,
    ALLOWED_METHODS,
    EXPOSED_HEADERS,
    CORSPolicy,
    Preflight,
)
from connectrpc._server.cors import CORSMiddleware, CORSWSGIMiddleware

__all__ = [
    "ALLOWED_HEADERS",
    "ALLOWED_METHODS",
    "EXPOSED_HEADERS",
    "CORSMiddleware",
    "CORSPolicy",
    "CORSWSGIMiddleware",
    "Preflight",
]
