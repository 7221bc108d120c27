"""Interceptors: code that runs around every call, in clients and servers alike.

Subclass ``Interceptor``, override the hooks you need, and pass instances in
``ClientOptions(interceptors=[...])`` or ``ServerOptions(interceptors=[...])``::

    from connectrpc.errors import Code, ConnectError
    from connectrpc.interceptors import Call, Interceptor

    class BearerToken(Interceptor):
        def __init__(self, token: str) -> None:
            self.token = token

        def on_start(self, call: Call) -> None:
            call.request_headers["authorization"] = f"Bearer {self.token}"

    class RequireToken(Interceptor):
        def __init__(self, token: str) -> None:
            self.expected = f"Bearer {token}"

        def on_start(self, call: Call) -> None:
            if call.request_headers.get("authorization") != self.expected:
                raise ConnectError(Code.UNAUTHENTICATED, "a valid bearer token is required")

The hooks, their order and the short-circuit rule are described on ``Interceptor``'s
module, ``connectrpc._core.interceptor``; in short: ``on_start`` and ``on_request`` run
first-to-last, ``on_response`` and ``on_end`` last-to-first, and ``on_end`` runs exactly
once for each interceptor whose ``on_start`` ran.
"""

from connectrpc._core.interceptor import Call, Interceptor, Peer

__all__ = ["Call", "Interceptor", "Peer"]
