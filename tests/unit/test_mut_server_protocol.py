"""The server protocol seam: defaults of ServerProtocol and the shared helpers.

Written against the survivors of tools/mutation.sh for connectrpc._protocol.server.
"""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from connectrpc._core import compression as _compression
from connectrpc._core.codec import CODECS
from connectrpc._protocol.grpc import GrpcServerProtocol
from connectrpc._protocol.server import RequestPlan, encode_headers, negotiate_compression


def test_unary_head_default_refuses() -> None:
    plan = RequestPlan(CODECS["proto"], True, None, None, None)
    with pytest.raises(NotImplementedError) as info:
        GrpcServerProtocol(web=True).unary_head(plan, False, 0, CIMultiDict(), CIMultiDict())
    assert str(info.value) == "GrpcServerProtocol has no bare unary responses"


def test_negotiate_compression_parameters() -> None:
    assert negotiate_compression("zz;q=1, BR ;q=0.5;x=y", None, ("gzip", "br")) is (
        _compression.get("br")
    )
    assert negotiate_compression("", None, ("gzip",)) is None


def test_encode_headers_latin1() -> None:
    assert encode_headers([("X-A", "caf\u00e9")]) == [(b"x-a", b"caf\xe9")]
