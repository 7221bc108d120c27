"""CORS for ASGI and WSGI applications: middlewares over the pure ``CORSPolicy``.

Each answers preflight requests itself and adds the CORS headers to every other response of
the wrapped application, so a browser page on an allowed origin can call Connect and
gRPC-Web methods and read their headers, trailers and errors. The policy decides
everything; the two classes only read the request and write the answer in their
interface's terms.
"""

from __future__ import annotations

import http
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from connectrpc._protocol.cors import CORSPolicy
from connectrpc._server.asgi import Receive, Scope, Send
from connectrpc._server.wsgi import environ_headers

__all__ = ["CORSMiddleware", "CORSWSGIMiddleware"]

ASGIApp = Any  # any ASGI 3 callable: (scope, receive, send) -> awaitable
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Wrapper:
    """An application and the CORS policy put in front of it."""

    def __init__(
        self,
        app: Any,
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


class CORSMiddleware(_Wrapper):
    """Wraps an ASGI application (a ``ConnectASGIApplication`` or any other) with CORS.

    ``allow_origins`` lists the origins allowed to call (``"*"``: any); ``allow_headers``
    and ``expose_headers`` add the application's own request and response headers to the
    ones the Connect family needs. See ``connectrpc.cors.CORSPolicy`` for every option.

    Requests without an ``Origin`` header (other servers, curl) pass through unchanged.
    """

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


class CORSWSGIMiddleware(_Wrapper):
    """Wraps a WSGI application (a ``ConnectWSGIApplication`` or any other) with CORS; the
    options are ``CORSMiddleware``'s."""

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        origin: str | None = environ.get("HTTP_ORIGIN")
        if origin is None:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        policy = self.policy
        if environ.get("REQUEST_METHOD") == "OPTIONS":
            headers = dict(environ_headers(environ))
            if policy.is_preflight("OPTIONS", headers):
                answer = policy.preflight(headers)
                body = answer.body.encode()
                start_response(
                    f"{answer.status} {http.HTTPStatus(answer.status).phrase}",
                    [*answer.headers, ("content-length", str(len(body)))],
                )
                return [body]
        extra = policy.response_headers(origin)

        def start_with_cors(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            return start_response(status, [*headers, *extra], exc_info)

        return self.app(environ, start_with_cors)  # type: ignore[no-any-return]
