"""Testing helpers: ``ASGITransport`` runs async client calls against an ASGI app in memory,
``WSGITransport`` runs sync client calls against a WSGI app in memory."""

from connectrpc._transports.asgi import ASGITransport
from connectrpc._transports.wsgi import WSGITransport

__all__ = ["ASGITransport", "WSGITransport"]
