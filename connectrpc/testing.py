"""Testing helpers: ``ASGITransport`` runs client calls against an ASGI app in memory."""

from ._transport_asgi import ASGITransport

__all__ = ["ASGITransport"]
