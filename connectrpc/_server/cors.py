"""CORS for ASGI applications: a middleware over the pure ``CORSPolicy``.

It answers preflight requests itself and adds the CORS headers to every other response of
the wrapped application, so a browser page on an allowed origin can call Connect and
gRPC-Web methods and read their headers, trailers and errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectrpc._protocol.cors import CORSPolicy
from connectrpc._server.asgi import Receive, Scope, Send

__all__ = ["CORSMiddleware"]

ASGIApp = Any  # any ASGI 3 callable: (scope, receive, send) -> awaitable


class CORSMiddleware:
    """Wraps an ASGI application (a ``ConnectASGIApplication`` or any other) with CORS.

    ``allow_origins`` lists the origins allowed to call (``"*"``: any); ``allow_headers``
    and ``expose_headers`` add the application's own request and response headers to the
    ones the Connect family needs. See ``connectrpc.cors.CORSPolicy`` for every option.

    Requests without an ``Origin`` header (other servers, curl) pass through unchanged.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        allow_origins: Sequence[str],
        allow_headers: Sequence[str] = (),
        expose_headers: Sequence[str] = (),
        allow_credentials: bool = False,
        max_age: int = 7200,
    ) -> None:
        self.app = app
        self.policy = CORSPolicy(
            allow_origins=allow_origins,
            allow_headers=allow_headers,
            expose_headers=expose_headers,
            allow_credentials=allow_credentials,
            max_age=max_age,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin: str | None = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value.decode("latin-1")
                break
        if origin is None:
            await self.app(scope, receive, send)
            return
        policy = self.policy
        if scope["method"] == "OPTIONS":
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            if policy.is_preflight("OPTIONS", headers):
                answer = policy.preflight(headers)
                body = answer.body.encode()
                raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
                raw.append((b"content-length", str(len(body)).encode()))
                await send({"type": "http.response.start", "status": answer.status, "headers": raw})
                await send({"type": "http.response.body", "body": body})
                return
        extra = [
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in policy.response_headers(origin)
        ]

        async def send_with_cors(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)
