"""The conformance service as importable applications, for servers run as their own process.

``conformance/server.py`` serves the ConformanceService in-process under hypercorn or uvicorn.
pyvoy (Envoy with embedded Python) and granian (Rust workers) load the application themselves,
by import path, in another process: they import ``app:app`` with ``conformance/`` and
``conformance/gen`` on ``PYTHONPATH`` (``conformance/launchers.py`` sets it up). The runner's
message receive limit reaches the application through ``CONFORMANCE_READ_MAX_BYTES``.

Nothing here patches or configures the server: the application is the same
``ConnectASGIApplication`` that the in-process servers run. gunicorn (WSGI) loads
``app:create_wsgi_app()``: the sync implementation (``server_sync.py``) in a
``ConnectWSGIApplication``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE), str(_HERE / "gen")):
    if _path not in sys.path:
        sys.path.append(_path)

import server_sync  # noqa: E402  (conformance/server_sync.py: the sync implementation)
from server import handlers  # noqa: E402  (conformance/server.py, importable without hypercorn)

from connectrpc.server import (  # noqa: E402
    ConnectASGIApplication,
    ConnectWSGIApplication,
    ServerOptions,
)

READ_MAX_BYTES_ENV = "CONFORMANCE_READ_MAX_BYTES"


def _options() -> ServerOptions:
    return ServerOptions(read_max_bytes=int(os.environ.get(READ_MAX_BYTES_ENV) or 0) or None)


def create_app() -> ConnectASGIApplication:
    """A ConnectASGIApplication for the ConformanceService, limited by the environment."""
    return ConnectASGIApplication(handlers(), options=_options())


def create_wsgi_app() -> ConnectWSGIApplication:
    """A ConnectWSGIApplication for the ConformanceService's sync implementation (gunicorn
    loads ``app:create_wsgi_app()``), limited by the environment."""
    return server_sync.create_app(_options())


app = create_app()
