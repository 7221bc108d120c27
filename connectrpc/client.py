"""Public client API: ``AsyncConnectClient``, ``ClientOptions`` and the transport seam."""

import aiohttp

from ._client_async import AsyncConnectClient, ClientOptions
from ._transport import AsyncTransport, HTTPRequest, TransportResponse
from ._transport_http1 import HTTP1Transport

HTTPClient = aiohttp.ClientSession | AsyncTransport
"""What a client sends through: an ``aiohttp.ClientSession`` or any ``AsyncTransport``."""

__all__ = [
    "AsyncConnectClient",
    "AsyncTransport",
    "ClientOptions",
    "HTTP1Transport",
    "HTTPClient",
    "HTTPRequest",
    "TransportResponse",
]
