"""Public client API: ``AsyncConnectClient`` and ``ConnectClient`` (blocking),
``ClientOptions``, the transports and the transport seams."""

import aiohttp

from connectrpc._client.async_client import AsyncConnectClient, ClientOptions
from connectrpc._client.bidi_stream import BidiCall, BidiStream
from connectrpc._client.sync_client import ConnectClient
from connectrpc._transports.base import (
    AsyncTransport,
    HTTPRequest,
    SyncTransport,
    SyncTransportResponse,
    TransportResponse,
)
from connectrpc._transports.cancel import CancelToken
from connectrpc._transports.http1 import HTTP1Transport
from connectrpc._transports.http2 import HTTP2Transport
from connectrpc._transports.sync_http1 import SyncHTTP1Transport
from connectrpc._transports.sync_http2 import SyncHTTP2Transport

HTTPClient = aiohttp.ClientSession | AsyncTransport
"""What a client sends through: an ``aiohttp.ClientSession`` or any ``AsyncTransport``."""

__all__ = [
    "AsyncConnectClient",
    "AsyncTransport",
    "BidiCall",
    "BidiStream",
    "CancelToken",
    "ClientOptions",
    "ConnectClient",
    "HTTP1Transport",
    "HTTP2Transport",
    "HTTPClient",
    "HTTPRequest",
    "SyncHTTP1Transport",
    "SyncHTTP2Transport",
    "SyncTransport",
    "SyncTransportResponse",
    "TransportResponse",
]
