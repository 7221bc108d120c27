"""The layers stay layers: the core and the protocols are pure, and IO sits on top.

``connectrpc._core`` (framing, codecs, compression, errors) and ``connectrpc._protocol``
(Connect, gRPC, gRPC-Web) take bytes and headers and give bytes and headers back. This test
reads their imports, following imports inside connectrpc, and fails if any of them reaches
asyncio, a socket or an HTTP library, or the IO layers above them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "connectrpc"
PURE = ("_core", "_protocol")
FORBIDDEN = {
    "asyncio",
    "socket",
    "ssl",
    "selectors",
    "threading",
    "aiohttp",
    "httptools",
    "h11",
    "h2",
    "hypercorn",
    "uvicorn",
    "urllib3",
    "httpx",
    "connectrpc._aio",
    "connectrpc._client",
    "connectrpc._server",
    "connectrpc._transports",
}


def _module_path(name: str) -> Path | None:
    parts = name.split(".")
    if parts[0] != "connectrpc":
        return None
    base = PACKAGE.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: use absolute imports inside connectrpc")
    return names


def _reachable(start: Path) -> dict[str, str]:
    """Every module name imported from ``start``, directly or through connectrpc modules,
    mapped to the connectrpc file that imports it."""
    seen: dict[str, str] = {}
    todo = [start]
    visited: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in visited:
            continue
        visited.add(path)
        for name in _imports(path):
            seen.setdefault(name, str(path.relative_to(PACKAGE.parent)))
            inner = _module_path(name)
            if inner is not None:
                todo.append(inner)
    return seen


PURE_MODULES = sorted(p for pkg in PURE for p in (PACKAGE / pkg).glob("*.py"))


@pytest.mark.parametrize("path", PURE_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pure_modules_do_no_io(path: Path) -> None:
    for name, importer in _reachable(path).items():
        top = name.split(".")[0]
        hit = name if name in FORBIDDEN else top if top in FORBIDDEN else None
        for prefix in FORBIDDEN:
            if name.startswith(prefix + "."):
                hit = prefix
        assert hit is None, f"{path.name} reaches {name} (imported by {importer})"


def test_every_runtime_module_is_in_a_layer() -> None:
    """New modules go in a layer package, or are one of the public modules on top."""
    public = {
        "__init__.py",
        "_version.py",
        "client.py",
        "cors.py",
        "errors.py",
        "headers.py",
        "interceptors.py",
        "health.py",
        "hypercorn.py",
        "method.py",
        "otel.py",
        "reflection.py",
        "server.py",
        "streams.py",
        "testing.py",
        "unary.py",
        "validate.py",
    }
    top_level = {p.name for p in PACKAGE.glob("*.py")}
    assert top_level == public
    assert len(PURE_MODULES) >= 10
