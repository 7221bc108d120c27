"""The public surface: these names are the contract, so changing them must be deliberate."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "connectrpc": ["__version__"],
    "connectrpc.client": [
        "AsyncConnectClient",
        "BidiCall",
        "BidiStream",
        "AsyncTransport",
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
    ],
    "connectrpc.cors": [
        "ALLOWED_HEADERS",
        "ALLOWED_METHODS",
        "EXPOSED_HEADERS",
        "CORSMiddleware",
        "CORSPolicy",
        "CORSWSGIMiddleware",
        "Preflight",
    ],
    "connectrpc.errors": ["Code", "ConnectError", "ErrorDetail"],
    "connectrpc.health": [
        "HealthCheckRequest",
        "HealthCheckResponse",
        "HealthChecker",
        "HealthListRequest",
        "HealthListResponse",
        "HealthMethods",
        "ServingStatus",
        "health_handlers",
    ],
    "connectrpc.interceptors": ["Call", "Interceptor", "Peer"],
    "connectrpc.headers": ["HeaderInput"],
    "connectrpc.method": [
        "RUNTIME_API_VERSION",
        "IdempotencyLevel",
        "MethodInfo",
        "StreamType",
        "require_runtime_api",
    ],
    "connectrpc.otel": ["OpenTelemetryInterceptor"],
    "connectrpc.reflection": ["ReflectionMethods", "reflection_handlers"],
    "connectrpc.server": [
        "ConnectASGIApplication",
        "ConnectWSGIApplication",
        "Handler",
        "RequestContext",
        "ServerOptions",
        "bidi_stream_handler",
        "client_stream_handler",
        "server_stream_handler",
        "sync_bidi_stream_handler",
        "sync_client_stream_handler",
        "sync_server_stream_handler",
        "sync_unary_handler",
        "unary_handler",
    ],
    "connectrpc.streams": ["StreamInput", "StreamOutput", "SyncStreamOutput"],
    "connectrpc.testing": ["ASGITransport", "WSGITransport"],
    "connectrpc.unary": ["UnaryOutput"],
    "connectrpc.validate": ["ValidationInterceptor", "violations_of"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_exported_names(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(PUBLIC[module])
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_runtime_api_guard_names_the_fix() -> None:
    from connectrpc.method import require_runtime_api

    require_runtime_api(1)
    with pytest.raises(ImportError, match="regenerate"):
        require_runtime_api(2)
