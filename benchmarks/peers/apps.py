"""The ASGI apps by import name, for servers that import the app themselves (granian, pyvoy):
``apps:ours`` and ``apps:official``; and the WSGI apps, for gunicorn: ``apps:ours_wsgi`` and
``apps:official_wsgi``. Each is built on first access, in the peer's own venv
(ours and the official runtime are both the ``connectrpc`` package, so only one of them is
importable in a given venv)."""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import server

_FACTORIES = {
    "ours": server.ours_app,
    "official": server.official_app,
    "ours_wsgi": server.ours_wsgi_app,
    "official_wsgi": server.official_wsgi_app,
}
_APPS: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    if name not in _FACTORIES:
        raise AttributeError(name)
    if name not in _APPS:
        _APPS[name] = _FACTORIES[name]()
    return _APPS[name]
