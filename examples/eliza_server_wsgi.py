"""The Eliza service as a WSGI application, served by gunicorn.

Run it (after ``uv run python tools/gen_examples.py``; needs ``pip install gunicorn``)::

    uv run python examples/eliza_server_wsgi.py --port 8080

or point any WSGI server at ``eliza_server_wsgi:app``::

    gunicorn --worker-class gthread --threads 8 --chdir examples eliza_server_wsgi:app

Like ``eliza_server.py`` it prints ``listening on http://127.0.0.1:PORT`` once the socket is
bound, and stops gracefully on SIGINT or SIGTERM. It serves Connect and gRPC-Web over
HTTP/1.1 (WSGI has no HTTP trailers, so no gRPC), with plain blocking handlers: the same
Eliza, written for threads instead of an event loop. Bidi calls are half-duplex: the whole
request stream arrives before the first reply.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Fallback for runs from a checkout; under Bazel the generated code comes from runfiles first.
sys.path.append(str(Path(__file__).resolve().parent / "gen"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from eliza.v1 import eliza_connect, eliza_pb2
from eliza_engine import introduction
from eliza_server import ElizaService, answer, bind_socket, url_of

from connectrpc.server import RequestContext

__all__ = ["ElizaServiceSync", "app", "main", "wsgi_app"]


class ElizaServiceSync(eliza_connect.ElizaServiceSync):
    """Eliza with blocking handlers; the conversations are ``ElizaService``'s."""

    def __init__(self, seed: int | None = None, *, pause: float = 0.0) -> None:
        self._eliza = ElizaService(seed, pause=pause)

    def say(self, request: eliza_pb2.SayRequest, ctx: RequestContext) -> eliza_pb2.SayResponse:
        """One sentence in, one reply out."""
        return answer(self._eliza.conversation(ctx), request)

    def converse(
        self, requests: Iterator[eliza_pb2.ConverseRequest], ctx: RequestContext
    ) -> Iterator[eliza_pb2.ConverseResponse]:
        """One reply per sentence, until the client stops or says goodbye."""
        eliza = self._eliza.conversation(ctx)
        turns = 0
        for request in requests:
            turns += 1
            yield eliza_pb2.ConverseResponse(sentence=eliza.reply(request.sentence))
            if eliza.finished:
                break
        ctx.response_trailers["eliza-turns"] = str(turns)

    def introduce(
        self, request: eliza_pb2.IntroduceRequest, ctx: RequestContext
    ) -> Iterator[eliza_pb2.IntroduceResponse]:
        """Eliza introduces herself, one sentence per message, each sent as it is ready."""
        self._eliza.conversation(ctx)
        for i, sentence in enumerate(introduction(request.name)):
            if i and self._eliza.pause:
                time.sleep(self._eliza.pause)
            yield eliza_pb2.IntroduceResponse(sentence=sentence)

    def pontificate(
        self, requests: Iterator[eliza_pb2.PontificateRequest], ctx: RequestContext
    ) -> eliza_pb2.PontificateResponse:
        """Eliza listens to the whole monologue, then answers once."""
        eliza = self._eliza.conversation(ctx)
        sentences = [request.sentence for request in requests]
        ctx.response_trailers["eliza-heard"] = str(len(sentences))
        return eliza_pb2.PontificateResponse(sentence=eliza.reply_to_monologue(sentences))


def wsgi_app(
    seed: int | None = None, *, pause: float = 0.0
) -> eliza_connect.ElizaServiceWSGIApplication:
    """The WSGI application serving Eliza."""
    return eliza_connect.ElizaServiceWSGIApplication(ElizaServiceSync(seed, pause=pause))


app = wsgi_app()
"""For WSGI servers: ``gunicorn eliza_server_wsgi:app``."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve Eliza as a WSGI app under gunicorn.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port (0: any free port)")
    parser.add_argument("--seed", type=int, help="make Eliza's replies reproducible")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads (gthread)")
    parser.add_argument(
        "--pause", type=float, default=0.0, help="seconds between introduction sentences"
    )
    args = parser.parse_args(argv)
    try:
        from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]
    except ImportError:
        parser.error("this example runs under gunicorn: pip install gunicorn")

    sock = bind_socket(args.host, args.port)
    sock.set_inheritable(True)  # gunicorn's workers are forked from its master
    settings: dict[str, Any] = {
        "bind": [f"fd://{sock.fileno()}"],
        "workers": 1,
        "worker_class": "gthread",
        "threads": args.threads,
        "graceful_timeout": 5,
        "loglevel": "warning",
    }
    application = wsgi_app(args.seed, pause=args.pause)

    class Server(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
        def load_config(self) -> None:
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> eliza_connect.ElizaServiceWSGIApplication:
            return application

    print(f"listening on {url_of(sock, False)}", flush=True)
    Server().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
