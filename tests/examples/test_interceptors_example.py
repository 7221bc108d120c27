"""examples/interceptors.py: the token check, the log lines and one trace across both sides."""

from __future__ import annotations

import logging

import pytest
from interceptors import main


async def test_interceptors_example(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="eliza.requests"):
        spans = await main()
    assert spans == [
        "server connectrpc.eliza.v1.ElizaService/Say",
        "client connectrpc.eliza.v1.ElizaService/Say",
        "server connectrpc.eliza.v1.ElizaService/Say",  # the refused call, traced too
    ]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert ": ok in " in lines[0]
    assert ": unauthenticated in " in lines[1]
