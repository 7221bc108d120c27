"""Testing helpers: ``ASGITransport`` runs client calls against an ASGI app in memory."""

from connectrpc._transports.asgi import ASGITransport

__all__ = ["ASGITransport"]
