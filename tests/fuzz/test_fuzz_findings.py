"""Runtime bugs found by fuzzing (``tools/fuzz.sh``), kept as regression tests.

Each test is the minimal input of a campaign crash, replayed through the runtime directly.
"""

from __future__ import annotations

import asyncio

from connectrpc._transports import http1 as _transport_http1
from connectrpc.errors import ConnectError

from .targets import _LIMITS_HTTP1, FakeTransport


def test_http1_status_below_100_is_rejected() -> None:
    """Found by http1_response: ``HTTP/1.1 051 ...`` was taken as a final response with
    status 51 (httptools accepts any three digits); a status outside 100-999 now fails the
    exchange as an invalid HTTP response."""
    loop = asyncio.new_event_loop()
    try:
        conn = _transport_http1._Connection(loop, **_LIMITS_HTTP1)
        conn.connection_made(FakeTransport())
        conn.data_received(b"HTTP/1.1 051 Odd\r\ncontent-length: 0\r\n\r\n")
        conn.connection_lost(None)
        assert isinstance(conn._error, ConnectError), conn.status
        assert "invalid status code 051" in conn._error.message
        assert not conn.head_done
    finally:
        loop.close()
