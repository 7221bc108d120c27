"""The conformance service as an importable ASGI application, for servers run as their own process.

``conformance/server.py`` serves the ConformanceService in-process under hypercorn or uvicorn.
pyvoy (Envoy with embedded Python) and granian (Rust workers) load the application themselves,
by import path, in another process: they import ``app:app`` with ``conformance/`` and
``conformance/gen`` on ``PYTHONPATH`` (``conformance/launchers.py`` sets it up). The runner's
message receive limit reaches the application through ``CONFORMANCE_READ_MAX_BYTES``.

Nothing here patches or configures the server: the application is the same
``ConnectASGIApplication`` that the in-process servers run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE), str(_HERE / "gen")):
    if _path not in sys.path:
        sys.path.append(_path)

from server import handlers  # noqa: E402  (conformance/server.py, importable without hypercorn)

from connectrpc.server import ConnectASGIApplication, ServerOptions  # noqa: E402

READ_MAX_BYTES_ENV = "CONFORMANCE_READ_MAX_BYTES"


def create_app() -> ConnectASGIApplication:
    """A ConnectASGIApplication for the ConformanceService, limited by the environment."""
    limit = int(os.environ.get(READ_MAX_BYTES_ENV) or 0) or None
    return ConnectASGIApplication(handlers(), options=ServerOptions(read_max_bytes=limit))


app = create_app()
