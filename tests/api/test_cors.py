"""CORSMiddleware around our ASGI app and CORSWSGIMiddleware around our WSGI app: preflights,
and real calls from an allowed origin."""

from __future__ import annotations

import io
from typing import Any

import pytest

from connectrpc.client import AsyncConnectClient, ClientOptions, ConnectClient
from connectrpc.cors import CORSMiddleware, CORSWSGIMiddleware
from connectrpc.errors import Code
from connectrpc.testing import ASGITransport, WSGITransport

from ._service import ECHO, FAIL, SPLIT, EchoService, S, make_app, make_wsgi_app

ORIGIN = "http://127.0.0.1:5173"


def cors_app(**options: Any) -> CORSMiddleware:
    options.setdefault("allow_origins", [ORIGIN])
    return CORSMiddleware(make_app(EchoService()), **options)


async def raw_call(
    app: Any, method: str, path: str, headers: list[tuple[str, str]]
) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request straight into the ASGI app; the whole response."""
    sent: list[dict[str, Any]] = []
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in headers],
    }
    await app(scope, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return (
        start["status"],
        [(k.decode(), v.decode()) for k, v in start["headers"]],
        body,
    )


async def test_preflight_is_answered_by_the_middleware() -> None:
    status, headers, _ = await raw_call(
        cors_app(),
        "OPTIONS",
        ECHO.procedure,
        [
            ("origin", ORIGIN),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type,connect-protocol-version"),
        ],
    )
    assert status == 204
    assert dict(headers)["access-control-allow-origin"] == ORIGIN


async def test_refused_preflight_says_why() -> None:
    status, headers, body = await raw_call(
        cors_app(),
        "OPTIONS",
        ECHO.procedure,
        [("origin", "http://elsewhere:1"), ("access-control-request-method", "POST")],
    )
    assert status == 403
    assert "access-control-allow-origin" not in dict(headers)
    assert b"allow_origins" in body


async def test_options_without_cors_headers_reaches_the_app() -> None:
    status, headers, _ = await raw_call(cors_app(), "OPTIONS", ECHO.procedure, [])
    assert status != 204
    assert "access-control-allow-origin" not in dict(headers)


@pytest.mark.parametrize("protocol", ["connect", "grpc-web"])
async def test_calls_from_an_allowed_origin_get_cors_headers(protocol: str) -> None:
    app = cors_app(expose_headers=["x-echo"])
    client = AsyncConnectClient(
        "http://test", ASGITransport(app), options=ClientOptions(protocol=protocol)
    )
    out = await client.call_unary(
        ECHO, S(value="hi"), extra_headers={"origin": ORIGIN, "x-echo": "back"}
    )
    assert out.message() == S(value="hi")
    headers = out.response_headers()
    assert headers["access-control-allow-origin"] == ORIGIN
    exposed = {h.strip().lower() for h in headers["access-control-expose-headers"].split(",")}
    assert {"x-echo", "grpc-status", "grpc-message", "grpc-status-details-bin"} <= exposed
    assert headers["x-echo"] == "back"

    failed = await client.call_unary(FAIL, S(value="no"), extra_headers={"origin": ORIGIN})
    error = failed.error()
    assert error is not None
    assert error.code is Code.FAILED_PRECONDITION
    assert failed.response_headers()["access-control-allow-origin"] == ORIGIN

    stream = await client.call_server_stream(SPLIT, S(value="ab"), extra_headers={"origin": ORIGIN})
    assert [m.value async for m in stream] == ["a", "b"]
    assert stream.response_headers()["access-control-allow-origin"] == ORIGIN


async def test_calls_without_origin_pass_through_unchanged() -> None:
    client = AsyncConnectClient("http://test", ASGITransport(cors_app()))
    out = await client.call_unary(ECHO, S(value="hi"))
    assert "access-control-allow-origin" not in out.response_headers()


async def test_calls_from_another_origin_get_no_cors_headers() -> None:
    client = AsyncConnectClient("http://test", ASGITransport(cors_app()))
    out = await client.call_unary(ECHO, S(value="hi"), extra_headers={"origin": "http://x:1"})
    assert out.message() == S(value="hi")
    assert "access-control-allow-origin" not in out.response_headers()
    assert out.response_headers()["vary"] == "Origin"


# --- the WSGI middleware ---------------------------------------------------------------------


def wsgi_cors_app() -> CORSWSGIMiddleware:
    return CORSWSGIMiddleware(make_wsgi_app(), allow_origins=[ORIGIN], expose_headers=["x-echo"])


def wsgi_call(
    app: CORSWSGIMiddleware, method: str, headers: dict[str, str]
) -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": ECHO.procedure,
        "QUERY_STRING": "",
        "wsgi.input": io.BytesIO(b""),
        "CONTENT_LENGTH": "0",
    }
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    started: list[Any] = []
    body = b"".join(app(environ, lambda status, hs, exc_info=None: started.extend([status, hs])))
    return started[0], dict(started[1]), body


def test_wsgi_preflight_and_refusal() -> None:
    status, headers, _ = wsgi_call(
        wsgi_cors_app(),
        "OPTIONS",
        {"origin": ORIGIN, "access-control-request-method": "POST"},
    )
    assert status == "204 No Content"
    assert headers["access-control-allow-origin"] == ORIGIN
    status, headers, body = wsgi_call(
        wsgi_cors_app(),
        "OPTIONS",
        {"origin": "http://elsewhere:1", "access-control-request-method": "POST"},
    )
    assert status.startswith("403 ")
    assert "access-control-allow-origin" not in headers
    assert b"allow_origins" in body


def test_wsgi_calls_get_cors_headers_only_from_an_origin() -> None:
    app = wsgi_cors_app()
    client = ConnectClient("http://test", WSGITransport(app))
    output = client.call_unary(ECHO, S(value="hi"), extra_headers={"origin": ORIGIN})
    assert output.message() == S(value="hi")
    exposed = output.response_headers()["access-control-expose-headers"].lower()
    assert output.response_headers()["access-control-allow-origin"] == ORIGIN
    assert "x-echo" in exposed
    assert "grpc-status" in exposed
    plain = client.call_unary(ECHO, S(value="hi"))
    assert "access-control-allow-origin" not in plain.response_headers()
