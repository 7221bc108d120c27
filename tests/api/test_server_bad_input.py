"""The server facing broken or hostile clients: correct status and code, never a crash.

Every test runs against both applications, ASGI and WSGI: they share the call logic, and
must answer bad input alike.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import MutableMapping
from typing import Any

import pytest

from connectrpc.server import ServerOptions

from ._service import EchoService, S, make_app, make_wsgi_app
from .test_wsgi import environ, wsgi_call

SERVERS = ("asgi", "wsgi")
_server = SERVERS[0]


@pytest.fixture(params=SERVERS, autouse=True)
def server(request: pytest.FixtureRequest) -> str:
    """The application every ``call`` in the test goes to."""
    global _server
    _server = str(request.param)
    return _server


def env(flags: int, data: bytes) -> bytes:
    return struct.pack(">BI", flags, len(data)) + data


async def call(
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    method: str = "POST",
    query: bytes = b"",
    options: ServerOptions | None = None,
) -> tuple[int, dict[str, str], bytes]:
    if _server == "wsgi":
        res = wsgi_call(make_wsgi_app(options=options), environ(path, headers, body, method, query))
        return res.status, res.headers, res.body
    app = make_app(EchoService(), options)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "query_string": query,
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
    }
    sent: list[MutableMapping[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(10)
        return {"type": "http.disconnect"}

    async def send(msg: MutableMapping[str, Any]) -> None:
        sent.append(msg)

    await asyncio.wait_for(app(scope, receive, send), 2)
    start = sent[0]
    out_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], out_headers, b"".join(m.get("body", b"") for m in sent[1:])


UNARY = {"content-type": "application/proto", "connect-protocol-version": "1"}
STREAM = {"content-type": "application/connect+proto", "connect-protocol-version": "1"}


def error_code(body: bytes) -> str:
    return str(json.loads(body)["code"])


def end_stream_code(body: bytes) -> str:
    # Walk the envelopes to the last one.
    pos, flags = 0, 0
    last = b""
    while pos < len(body):
        flags, length = struct.unpack(">BI", body[pos : pos + 5])
        last = body[pos + 5 : pos + 5 + length]
        pos += 5 + length
    assert flags & 2
    return str(json.loads(last)["error"]["code"])


async def test_unknown_method_404() -> None:
    status, _, body = await call("/test.v1.EchoService/Nope", UNARY)
    assert status == 404
    assert error_code(body) == "unimplemented"
    status, _, _ = await call("/other.Service/Echo", UNARY)
    assert status == 404


async def test_unsupported_content_type_415() -> None:
    status, headers, _ = await call("/test.v1.EchoService/Echo", {"content-type": "text/plain"})
    assert status == 415
    assert "application/proto" in headers["accept-post"]
    # A streaming content type on a unary method is just as unsupported.
    status, _, _ = await call("/test.v1.EchoService/Echo", STREAM)
    assert status == 415


async def test_non_post_405() -> None:
    status, headers, _ = await call("/test.v1.EchoService/Fail", {}, method="GET")
    assert status == 405
    assert headers["allow"] == "POST"
    status, _, _ = await call("/test.v1.EchoService/Echo", UNARY, method="PUT")
    assert status == 405


async def test_bad_protocol_version_400() -> None:
    headers = {**UNARY, "connect-protocol-version": "2"}
    status, _, body = await call("/test.v1.EchoService/Echo", headers, S().SerializeToString())
    assert status == 400
    assert error_code(body) == "invalid_argument"


async def test_bad_timeout_400() -> None:
    headers = {**UNARY, "connect-timeout-ms": "soon"}
    status, _, body = await call("/test.v1.EchoService/Echo", headers)
    assert status == 400
    assert error_code(body) == "invalid_argument"


async def test_invalid_proto_body() -> None:
    status, _, body = await call("/test.v1.EchoService/Echo", UNARY, b"\xff\xff\xff")
    assert status == 400
    assert error_code(body) == "invalid_argument"


async def test_invalid_json_body() -> None:
    headers = {**UNARY, "content-type": "application/json"}
    status, _, body = await call("/test.v1.EchoService/Echo", headers, b"{bad")
    assert status == 400
    assert error_code(body) == "invalid_argument"


async def test_unsupported_compression() -> None:
    headers = {**UNARY, "content-encoding": "lz4"}
    status, _, body = await call("/test.v1.EchoService/Echo", headers, b"")
    assert status == 501
    assert error_code(body) == "unimplemented"
    assert "lz4" in json.loads(body)["message"]


async def test_corrupt_gzip_body() -> None:
    headers = {**UNARY, "content-encoding": "gzip"}
    status, _, body = await call("/test.v1.EchoService/Echo", headers, b"garbage")
    assert status == 400
    assert error_code(body) == "invalid_argument"


async def test_message_over_limit() -> None:
    body = S(value="x" * 2000).SerializeToString()
    opts = ServerOptions(read_max_bytes=1000)
    status, _, out = await call("/test.v1.EchoService/Echo", UNARY, body, options=opts)
    assert status == 429
    assert error_code(out) == "resource_exhausted"
    status, _, out = await call("/test.v1.EchoService/Split", STREAM, env(0, body), options=opts)
    assert status == 200
    assert end_stream_code(out) == "resource_exhausted"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        # The client's stream is malformed: its fault, invalid_argument.
        (env(0, S(value="ab").SerializeToString())[:-1], "invalid_argument"),  # truncated data
        (b"\x00\x00", "invalid_argument"),  # truncated prefix
        (env(2, b"{}"), "invalid_argument"),  # end-stream flag from a client
        # connect-go's choice: a compressed frame with no compression negotiated is a
        # protocol error of the peer's implementation.
        (env(1, b"x"), "internal"),
    ],
)
async def test_bad_envelopes(body: bytes, code: str) -> None:
    status, _, out = await call("/test.v1.EchoService/Split", STREAM, body)
    assert status == 200
    assert end_stream_code(out) == code


async def test_server_stream_needs_exactly_one_message() -> None:
    one = env(0, S(value="ab").SerializeToString())
    # connect-go's choice, which the conformance suite checks: the client broke the
    # method's cardinality, as if calling a method of another shape.
    _, _, out = await call("/test.v1.EchoService/Split", STREAM, one + one)
    assert end_stream_code(out) == "unimplemented"
    _, _, out = await call("/test.v1.EchoService/Split", STREAM, b"")
    assert end_stream_code(out) == "unimplemented"


async def test_bad_get_query() -> None:
    path = "/test.v1.EchoService/Echo"
    status, _, _ = await call(path, {}, method="GET", query=b"encoding=proto&base64=1&message=!!!")
    assert status == 400
    status, _, _ = await call(path, {}, method="GET", query=b"encoding=yaml&message=x")
    assert status == 415
    status, _, _ = await call(path, {}, method="GET", query=b"message=x")
    assert status == 400
