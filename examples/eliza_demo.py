"""The whole Eliza demo in one command: start a server, talk to it, stop it.

    uv run python examples/eliza_demo.py        (or ./tools/demo.sh, which also sets up)

Starts ``eliza_server.py`` as a subprocess on a free port of 127.0.0.1, reads the URL it
prints, runs the ``eliza_client.py`` conversation in this process, then the same with the
blocking client (``eliza_client_sync.py``, in a worker thread), then a full-duplex gRPC
conversation over HTTP/2, then stops the server with SIGTERM and waits for it to exit.
Exits non-zero if any step fails.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.append(str(HERE / "gen"))  # after runfiles, under Bazel
sys.path.insert(0, str(HERE))

from eliza_client import run_conversation, run_full_duplex  # noqa: E402
from eliza_client_sync import run_conversation_sync  # noqa: E402

__all__ = ["main", "run_demo", "start_server", "stop_server"]

STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 15.0
LISTENING = "listening on "


async def start_server(
    *args: str, script: str = "eliza_server.py"
) -> tuple[asyncio.subprocess.Process, str]:
    """Start ``SCRIPT --host 127.0.0.1 --port 0 ARGS``; returns it and its URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / script),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), STARTUP_TIMEOUT)
    except BaseException:
        await stop_server(process)
        raise
    text = line.decode().strip()
    if not text.startswith(LISTENING):
        await stop_server(process)
        raise RuntimeError(f"the server did not start (it printed {text!r})")
    return process, text[len(LISTENING) :]


async def stop_server(process: asyncio.subprocess.Process) -> int:
    """SIGTERM the server and wait for it (killing it if it hangs); returns its exit code."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.communicate(), SHUTDOWN_TIMEOUT)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
            raise RuntimeError("the server did not stop within SIGTERM's grace period") from None
    assert process.returncode is not None
    return process.returncode


async def run_demo() -> int:
    process, url = await start_server()
    print(f"Eliza is listening on {url}\n", flush=True)
    try:
        await run_conversation(url)
        print()
        await asyncio.to_thread(run_conversation_sync, url)
        print()
        await run_full_duplex(url)
    finally:
        code = await stop_server(process)
    if code != 0:
        print(f"\neliza_demo: the server exited with status {code}", file=sys.stderr)
        return 1
    print("\nThe server stopped cleanly.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.parse_args(argv)
    return asyncio.run(run_demo())


if __name__ == "__main__":
    sys.exit(main())
