"""Cross-origin resource sharing for the Connect family, free of IO.

A browser calls another origin's RPC service only if that service answers CORS: a
*preflight* ``OPTIONS`` request first asks whether the method and request headers are
allowed (https://fetch.spec.whatwg.org/#http-cors-protocol), and every actual response
must name the caller's origin in ``Access-Control-Allow-Origin`` and list in
``Access-Control-Expose-Headers`` each response header that script may read.

Which headers those are depends on the protocol:

- Connect (https://connectrpc.com/docs/protocol) sends ``Connect-Protocol-Version``,
  ``Connect-Timeout-Ms`` and, for streams, ``Connect-Content-Encoding`` /
  ``Connect-Accept-Encoding``; unary responses carry trailers as ``Trailer-``-prefixed
  headers, and Connect GET requests (idempotent unary methods) use ``GET``.
- gRPC-Web (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md) sends
  ``X-Grpc-Web``, ``Grpc-Timeout``, ``X-User-Agent`` and the ``Grpc-*`` encoding headers; a
  trailers-only response puts ``Grpc-Status``, ``Grpc-Message`` and
  ``Grpc-Status-Details-Bin`` in the headers, which script must be allowed to read.

``CORSPolicy`` turns the user's allowed origins (and their own headers) into the preflight
answer and the headers of actual responses. The ASGI middleware in ``connectrpc.cors`` is a
thin layer over it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = [
    "ALLOWED_HEADERS",
    "ALLOWED_METHODS",
    "EXPOSED_HEADERS",
    "CORSPolicy",
    "Preflight",
]

ALLOWED_METHODS: tuple[str, ...] = ("GET", "POST")
"""HTTP methods of the Connect family: ``POST`` for every call, ``GET`` for Connect GET."""

ALLOWED_HEADERS: tuple[str, ...] = (
    "Content-Type",
    "Content-Encoding",
    "Connect-Protocol-Version",
    "Connect-Timeout-Ms",
    "Connect-Content-Encoding",
    "Connect-Accept-Encoding",
    "Grpc-Timeout",
    "Grpc-Encoding",
    "Grpc-Accept-Encoding",
    "X-Grpc-Web",
    "X-User-Agent",
)
"""Request headers that Connect and gRPC-Web clients set."""

EXPOSED_HEADERS: tuple[str, ...] = (
    "Grpc-Status",
    "Grpc-Message",
    "Grpc-Status-Details-Bin",
    "Grpc-Encoding",
    "Grpc-Accept-Encoding",
    "Connect-Content-Encoding",
    "Connect-Accept-Encoding",
    "Content-Encoding",
)
"""Response headers that Connect and gRPC-Web clients read (beyond the CORS-safelisted ones)."""

_VARY_PREFLIGHT = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


def _check_origin(origin: str) -> str:
    if origin == "*":
        return origin
    parts = urlsplit(origin)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.path
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise ValueError(
            f"allowed origin {origin!r} is not an origin: write scheme://host[:port] with no "
            "path or trailing slash, as browsers send it (e.g. 'https://app.example.com'), "
            "or '*' for any origin"
        )
    return origin.lower()


def _check_token(name: str, what: str) -> str:
    if not name or any(c in name for c in ' \t\r\n,:;"()/<>?@[\\]{}=') or not name.isascii():
        raise ValueError(f"{what} {name!r} is not an HTTP header name")
    return name


@dataclass(frozen=True)
class Preflight:
    """The answer to a preflight request: status, headers and a plain-text body.

    A refused preflight (403) carries no CORS headers, so the browser blocks the call; its
    body says why, for whoever reads the network log.
    """

    status: int
    headers: list[tuple[str, str]]
    body: str = ""


@dataclass(frozen=True)
class CORSPolicy:
    """Which origins may call the service from a browser, and with which extra headers.

    Attributes:
        allow_origins: origins allowed to call, exactly as browsers send them
            (``"https://app.example.com"``, ``"http://localhost:3000"``); ``"*"`` allows any.
        allow_headers: request headers of the application's own, on top of the protocols'
            (``ALLOWED_HEADERS``); ``"*"`` allows whatever a preflight asks for.
        expose_headers: response headers and trailers of the application's own that script
            may read, on top of the protocols' (``EXPOSED_HEADERS``). Each is also exposed
            as ``Trailer-<name>``, the form Connect unary responses give trailers.
        allow_credentials: let browsers send cookies and HTTP authentication. Needs explicit
            origins: with ``"*"`` any site could call with the user's credentials.
        max_age: seconds a browser may cache a preflight answer.
    """

    allow_origins: Sequence[str]
    allow_headers: Sequence[str] = ()
    expose_headers: Sequence[str] = ()
    allow_credentials: bool = False
    max_age: int = 7200
    _origins: frozenset[str] = field(init=False, repr=False, compare=False)
    _any_origin: bool = field(init=False, repr=False, compare=False)
    _any_header: bool = field(init=False, repr=False, compare=False)
    _allowed_headers: frozenset[str] = field(init=False, repr=False, compare=False)
    _allowed_list: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _allow_headers_value: str = field(init=False, repr=False, compare=False)
    _expose_value: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.allow_origins, str):
            raise TypeError("allow_origins is a list of origins, not one string")
        origins = frozenset(_check_origin(o) for o in self.allow_origins)
        if not origins:
            raise ValueError("allow_origins is empty: name the origins allowed to call, or '*'")
        any_origin = "*" in origins
        if any_origin and self.allow_credentials:
            raise ValueError(
                "allow_credentials=True with allow_origins=['*'] would let every site call "
                "with the user's cookies; list the origins that may do so"
            )
        if self.max_age < 0:
            raise ValueError("max_age must not be negative")
        any_header = "*" in self.allow_headers
        own = [_check_token(h, "allowed header") for h in self.allow_headers if h != "*"]
        allowed = _dedupe([*ALLOWED_HEADERS, *own])
        exposed_own = [_check_token(h, "exposed header") for h in self.expose_headers]
        exposed = _dedupe([*EXPOSED_HEADERS, *exposed_own, *(f"Trailer-{h}" for h in exposed_own)])
        set_ = object.__setattr__
        set_(self, "_origins", origins)
        set_(self, "_any_origin", any_origin)
        set_(self, "_any_header", any_header)
        set_(self, "_allowed_headers", frozenset(h.lower() for h in allowed))
        set_(self, "_allowed_list", tuple(allowed))
        set_(self, "_allow_headers_value", ", ".join(allowed))
        set_(self, "_expose_value", ", ".join(exposed))

    def allows_origin(self, origin: str) -> bool:
        return self._any_origin or origin.lower() in self._origins

    @staticmethod
    def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
        """Whether a request is a CORS preflight: ``OPTIONS`` with ``Origin`` and
        ``Access-Control-Request-Method`` (header names lower-case)."""
        return (
            method == "OPTIONS"
            and "origin" in headers
            and "access-control-request-method" in headers
        )

    def preflight(self, headers: Mapping[str, str]) -> Preflight:
        """The answer to a preflight request with these (lower-case named) headers."""
        origin = headers.get("origin", "")
        if not self.allows_origin(origin):
            return _refuse(
                f"origin {origin!r} may not call this service: add it to the allowed origins "
                "(CORSMiddleware allow_origins)"
            )
        method = headers.get("access-control-request-method", "").strip()
        if method not in ALLOWED_METHODS:
            return _refuse(
                f"method {method!r} is not used by Connect, gRPC-Web or Connect GET "
                f"(allowed: {', '.join(ALLOWED_METHODS)})"
            )
        requested = [
            h.strip().lower()
            for h in headers.get("access-control-request-headers", "").split(",")
            if h.strip()
        ]
        if self._any_header:
            allow_headers = ", ".join(_dedupe([*self._allowed_list, *requested]))
        else:
            refused = [h for h in requested if h not in self._allowed_headers]
            if refused:
                return _refuse(
                    f"request header(s) {', '.join(refused)} are not allowed: add them to "
                    "the allowed headers (CORSMiddleware allow_headers)"
                )
            allow_headers = self._allow_headers_value
        answer = [
            *self._origin_headers(origin),
            ("access-control-allow-methods", ", ".join(ALLOWED_METHODS)),
            ("access-control-allow-headers", allow_headers),
            ("access-control-max-age", str(self.max_age)),
            ("vary", _VARY_PREFLIGHT),
        ]
        return Preflight(204, answer)

    def response_headers(self, origin: str | None) -> list[tuple[str, str]]:
        """Headers to add to an actual (non-preflight) response for a request from
        ``origin``: none when there is no ``Origin`` header or the origin is not allowed."""
        vary = [("vary", "Origin")]
        if origin is None or not self.allows_origin(origin):
            return vary
        return [
            *self._origin_headers(origin),
            ("access-control-expose-headers", self._expose_value),
            *vary,
        ]

    def _origin_headers(self, origin: str) -> list[tuple[str, str]]:
        # The origin is echoed, not "*", so that one answer serves credentials too; "Vary:
        # Origin" keeps caches from serving it to another origin.
        headers = [("access-control-allow-origin", origin)]
        if self.allow_credentials:
            headers.append(("access-control-allow-credentials", "true"))
        return headers


def _refuse(reason: str) -> Preflight:
    return Preflight(
        403, [("content-type", "text/plain; charset=utf-8"), ("vary", _VARY_PREFLIGHT)], reason
    )


def _dedupe(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        if name.lower() not in seen:
            seen.add(name.lower())
            out.append(name)
    return out
