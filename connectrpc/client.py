"""Public client API: ``AsyncConnectClient``, ``ClientOptions`` and the transport seam."""

import aiohttp

from connectrpc._client.async_client import AsyncConnectClient, ClientOptions
from connectrpc._client.bidi_stream import BidiCall, BidiStream
from connectrpc._transports.base import AsyncTransport, HTTPRequest, TransportResponse
from connectrpc._transports.http1 import HTTP1Transport
from connectrpc._transports.http2 import HTTP2Transport

HTTPClient = aiohttp.ClientSession | AsyncTransport
"""What a client sends through: an ``aiohttp.ClientSession`` or any ``AsyncTransport``."""

__all__ = [
    "AsyncConnectClient",
    "AsyncTransport",
    "BidiCall",
    "BidiStream",
    "ClientOptions",
    "HTTP1Transport",
    "HTTP2Transport",
    "HTTPClient",
    "HTTPRequest",
    "TransportResponse",
]
