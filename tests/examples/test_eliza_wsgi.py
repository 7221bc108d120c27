"""The WSGI Eliza server (``examples/eliza_server_wsgi.py``, under gunicorn) against every
client we have: the async client (aiohttp), the blocking client, and connect-go over
HTTP/1.1 with the Connect and gRPC-Web protocols (every RPC kind but bidi, which connect-go
does not send over HTTP/1.1).

The server runs as a subprocess on a free port of 127.0.0.1 with a fixed seed, so each
client's conversation can be compared with what Eliza says.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from eliza_client import run_conversation
from eliza_client_sync import run_conversation_sync
from eliza_demo import start_server, stop_server
from eliza_engine import Eliza, introduction

from .test_interop_go import SEED, _expected, go_client, run_go_client

__all__ = ["go_client"]  # a fixture, used by name


@pytest.fixture
async def wsgi_url() -> AsyncIterator[str]:
    process, url = await start_server("--seed", str(SEED), script="eliza_server_wsgi.py")
    try:
        yield url
    finally:
        assert await stop_server(process) == 0


async def test_async_and_sync_clients(wsgi_url: str) -> None:
    async_lines: list[str] = []
    sync_lines: list[str] = []
    await run_conversation(wsgi_url, out=async_lines.append)
    await asyncio.to_thread(run_conversation_sync, wsgi_url, out=sync_lines.append)
    intro = [f"Eliza: {sentence}" for sentence in introduction("Ada")]
    for lines in (async_lines, sync_lines):
        assert lines[1 : 1 + len(intro)] == intro
        assert f"Eliza: {Eliza(SEED).reply('Hello, Eliza.')}" in lines
        assert "(response header eliza-version: 1966.1)" in lines
        assert "(response trailer eliza-heard: 3)" in lines
        assert "Error: invalid_argument: say something: the sentence is empty" in lines
    replies = [line for line in async_lines if line.startswith("Eliza: ")]
    assert replies == [line for line in sync_lines if line.startswith("Eliza: ")]


@pytest.mark.parametrize("protocol", ["grpcweb", "connect"])
async def test_connect_go_client_over_http1(go_client: Path, wsgi_url: str, protocol: str) -> None:
    results = await run_go_client(go_client, "-url", wsgi_url, "-protocol", protocol, "-http1")
    # Everything but Converse: connect-go refuses bidi streams over HTTP/1.1.
    expected = [r for r in _expected(protocol) if r["rpc"] != "Converse"]
    assert expected[-1] == {"rpc": "transport", "protos": ["HTTP/2.0"]}
    expected[-1] = {"rpc": "transport", "protos": ["HTTP/1.1"]}
    assert results == expected
