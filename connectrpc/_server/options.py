"""``ServerOptions``: the settings both server applications (ASGI and WSGI) take."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from connectrpc._core.interceptor import Interceptor

__all__ = ["ServerOptions"]


@dataclass(frozen=True)
class ServerOptions:
    """Server-wide settings.

    Attributes:
        read_max_bytes: the largest request message accepted, measured after decompression;
            larger ones fail with ``resource_exhausted``. ``None`` disables the limit.
        compressions: compressions the server accepts and may respond with; ``None`` means
            every one installed.
        compress_min_bytes: response messages smaller than this are sent uncompressed.
        read_idle_timeout: seconds a handler may wait for the next piece of the request body
            before its read fails with ``deadline_exceeded``, so a client that stalls its
            upload cannot hold a handler forever even without a deadline. ``None`` waits
            forever. The ASGI app enforces it; under WSGI a read of ``wsgi.input`` blocks
            inside the server, so there the server's own timeout applies (gunicorn's
            ``--timeout``, waitress's ``channel_timeout``), and a call with a deadline is
            still answered at its deadline.
        send_idle_timeout: seconds one write of the response may block before the client is
            treated as gone and the call abandoned: a client that stops reading (or a server
            that lost the connection without telling the app) cannot keep a handler task
            alive forever. ``None`` waits forever. ASGI only: a WSGI server does the writing.
        interceptors: run around every handler, the first one outermost
            (``connectrpc.interceptors``). Under WSGI their hooks must be plain functions.
    """

    read_max_bytes: int | None = 4 * 1024 * 1024
    compressions: tuple[str, ...] | None = None
    compress_min_bytes: int = 1024
    read_idle_timeout: float | None = 60.0
    send_idle_timeout: float | None = 60.0
    interceptors: Sequence[Interceptor] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "interceptors", tuple(self.interceptors))
