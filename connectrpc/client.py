"""Public client API: ``AsyncConnectClient``, ``ClientOptions`` and the transport seam."""

from ._client_async import AsyncConnectClient, ClientOptions
from ._transport import AsyncTransport, HTTPRequest, TransportResponse

__all__ = [
    "AsyncConnectClient",
    "AsyncTransport",
    "ClientOptions",
    "HTTPRequest",
    "TransportResponse",
]
