"""The Eliza service, served over HTTP/1.1 and HTTP/2 by hypercorn.

Run it (after ``uv run python tools/gen_examples.py``)::

    uv run python examples/eliza_server.py --port 8080
    uv run python examples/eliza_server.py --port 0 --tls-cert cert.pem --tls-key key.pem

Once the socket is bound it prints one line, ``listening on http://127.0.0.1:PORT``, with
the real port (useful with ``--port 0``). SIGINT or SIGTERM stop it gracefully.

On plain TCP hypercorn always accepts HTTP/2 (with prior knowledge, or through
``Upgrade: h2c``) besides HTTP/1.1, so ``--h2c`` changes nothing: it is accepted so that
scripts can say what they rely on. With TLS, HTTP/2 is negotiated with ALPN.

The service speaks Connect, gRPC (over HTTP/2) and gRPC-Web at once, so ``grpcio`` stubs and
``buf curl --protocol grpc`` can call it as well as connect-python's client.

Browser pages on other origins can call it once their origin is allowed with
``--cors-origin`` (repeatable; ``*`` allows any origin)::

    uv run python examples/eliza_server.py --port 8080 --cors-origin http://localhost:5173
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

# Fallback for runs from a checkout; under Bazel the generated code comes from runfiles first.
sys.path.append(str(Path(__file__).resolve().parent / "gen"))

from eliza.v1 import eliza_connect, eliza_pb2
from eliza_engine import Eliza, introduction
from google.protobuf import wrappers_pb2
from hypercorn.asyncio import serve
from hypercorn.config import Config

from connectrpc.cors import CORSMiddleware
from connectrpc.errors import Code, ConnectError
from connectrpc.health import HealthChecker, ServingStatus, health_handlers
from connectrpc.hypercorn import patch_hypercorn_h2
from connectrpc.reflection import reflection_handlers
from connectrpc.server import ConnectASGIApplication, RequestContext

__all__ = [
    "ELIZA_VERSION",
    "ElizaService",
    "answer",
    "asgi_app",
    "bind_socket",
    "main",
    "make_config",
    "run",
    "url_of",
]

ELIZA_VERSION = "1966.1"
"""Sent in the ``eliza-version`` response header of every call."""

REQUEST_ID_HEADER = "x-request-id"
"""A request header that Eliza echoes in her response headers, as services behind load
balancers do, so that a caller can match logs to calls."""


class ElizaService(eliza_connect.ElizaService):
    """Eliza, the Rogerian psychotherapist, as a Connect service.

    ``seed`` makes Eliza's replies reproducible (each call starts a conversation from it);
    ``None`` lets her vary. ``pause`` is how long she pauses between the sentences of her
    introduction, as someone typing would.
    """

    def __init__(self, seed: int | None = None, *, pause: float = 0.0) -> None:
        self._seed = seed
        self._pause = pause

    @property
    def pause(self) -> float:
        return self._pause

    def conversation(self, ctx: RequestContext) -> Eliza:
        """A new conversation for one call; sets Eliza's response headers."""
        ctx.response_headers["eliza-version"] = ELIZA_VERSION
        request_id = ctx.request_headers.get(REQUEST_ID_HEADER)
        if request_id is not None:
            ctx.response_headers[REQUEST_ID_HEADER] = request_id
        return Eliza(self._seed)

    async def say(
        self, request: eliza_pb2.SayRequest, ctx: RequestContext
    ) -> eliza_pb2.SayResponse:
        """One sentence in, one reply out. Each call is a fresh conversation: no side effects."""
        return answer(self.conversation(ctx), request)

    async def converse(
        self, requests: AsyncIterator[eliza_pb2.ConverseRequest], ctx: RequestContext
    ) -> AsyncIterator[eliza_pb2.ConverseResponse]:
        """A conversation: one reply per sentence, until the client stops or says goodbye."""
        eliza = self.conversation(ctx)
        turns = 0
        async for request in requests:
            turns += 1
            yield eliza_pb2.ConverseResponse(sentence=eliza.reply(request.sentence))
            if eliza.finished:
                break
        ctx.response_trailers["eliza-turns"] = str(turns)

    async def introduce(
        self, request: eliza_pb2.IntroduceRequest, ctx: RequestContext
    ) -> AsyncIterator[eliza_pb2.IntroduceResponse]:
        """Eliza introduces herself, one sentence per message."""
        self.conversation(ctx)
        for i, sentence in enumerate(introduction(request.name)):
            if i and self._pause:
                await asyncio.sleep(self._pause)
            yield eliza_pb2.IntroduceResponse(sentence=sentence)

    async def pontificate(
        self, requests: AsyncIterator[eliza_pb2.PontificateRequest], ctx: RequestContext
    ) -> eliza_pb2.PontificateResponse:
        """Eliza listens to the whole monologue, then answers once."""
        eliza = self.conversation(ctx)
        sentences = [request.sentence async for request in requests]
        ctx.response_trailers["eliza-heard"] = str(len(sentences))
        return eliza_pb2.PontificateResponse(sentence=eliza.reply_to_monologue(sentences))


def answer(eliza: Eliza, request: eliza_pb2.SayRequest) -> eliza_pb2.SayResponse:
    """Eliza's reply to one sentence; an empty one is ``invalid_argument``."""
    if not request.sentence.strip():
        # The detail tells a program (not just a person) what to fix.
        raise ConnectError(
            Code.INVALID_ARGUMENT,
            "say something: the sentence is empty",
            details=[wrappers_pb2.StringValue(value="SayRequest.sentence")],
        )
    return eliza_pb2.SayResponse(sentence=eliza.reply(request.sentence))


def asgi_app(
    service: ElizaService,
    *,
    cors_origins: Sequence[str] = (),
    checker: HealthChecker | None = None,
) -> ConnectASGIApplication | CORSMiddleware:
    """The ASGI application serving ``service`` with gRPC health checking (from ``checker``;
    by default the server and Eliza are SERVING) and server reflection, so grpcurl and
    ``buf curl`` need no .proto files; with ``cors_origins``, wrapped in CORS so that browser
    pages on those origins can call it and read Eliza's own headers."""
    if checker is None:
        checker = HealthChecker()
        checker.set_status(eliza_connect.ElizaServiceMethods.SAY.service, ServingStatus.SERVING)
    eliza = eliza_connect.ElizaServiceASGIApplication(service)
    services = [*eliza.handlers, *health_handlers(checker)]
    app = ConnectASGIApplication([*services, *reflection_handlers(services)])
    if not cors_origins:
        return app
    return CORSMiddleware(
        app,
        allow_origins=cors_origins,
        allow_headers=[REQUEST_ID_HEADER],
        expose_headers=["eliza-version", REQUEST_ID_HEADER, "eliza-turns", "eliza-heard"],
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; with ``port=0`` the OS picks a free port."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, type_, proto, _, address = infos[0]
    sock = socket.socket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def make_config(
    sock: socket.socket, *, tls_cert: str | None = None, tls_key: str | None = None
) -> Config:
    """A hypercorn config serving on ``sock``, which it takes over (and closes)."""
    config = Config()
    # hypercorn makes its own socket object from the descriptor: hand the descriptor over
    # so that exactly one object owns it.
    config.bind = [f"fd://{sock.detach()}"]
    config.certfile = tls_cert
    config.keyfile = tls_key
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 5.0
    # hypercorn ends a connection with GOAWAY after this many requests, counting one still in
    # flight that it then drops: long-lived HTTP/2 clients (gRPC channels) would see it fail.
    config.keep_alive_max_requests = 2**31
    return config


def url_of(sock: socket.socket, tls: bool) -> str:
    """The base URL of a bound socket: ``http://127.0.0.1:PORT``."""
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"


async def run(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    seed: int | None = None,
    pause: float = 0.0,
    cors_origins: Sequence[str] = (),
) -> None:
    """Serve until SIGINT or SIGTERM; prints the URL once the socket is bound."""
    # gRPC clients and full-duplex streams may still send after an answer, which stock
    # hypercorn 0.18 answers by dropping the HTTP/2 connection: see connectrpc.hypercorn.
    patch_hypercorn_h2()
    sock = bind_socket(host, port)
    tls = tls_cert is not None
    url = url_of(sock, tls)
    config = make_config(sock, tls_cert=tls_cert, tls_key=tls_key)
    if config.ssl_enabled:
        config.create_ssl_context()  # fail now, not after announcing the URL, on a bad cert
    checker = HealthChecker()
    checker.set_status(eliza_connect.ElizaServiceMethods.SAY.service, ServingStatus.SERVING)
    app = asgi_app(ElizaService(seed, pause=pause), cors_origins=cors_origins, checker=checker)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def begin_shutdown() -> None:
        # Health watchers (load balancers) hear NOT_SERVING before the connections close.
        checker.shutdown()
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, begin_shutdown)
    # The socket is already listening, so clients may connect as soon as they see the URL.
    print(f"listening on {url}", flush=True)
    try:
        await serve(app, config, shutdown_trigger=stop.wait, mode="asgi")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the Eliza example service.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port (0: any free port)")
    parser.add_argument(
        "--h2c",
        action="store_true",
        help="HTTP/2 over cleartext (always accepted by hypercorn on plain TCP)",
    )
    parser.add_argument("--tls-cert", help="PEM certificate chain; serves HTTPS")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    parser.add_argument("--seed", type=int, help="make Eliza's replies reproducible")
    parser.add_argument(
        "--pause",
        type=float,
        default=0.0,
        help="seconds Eliza pauses between the sentences of her introduction",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let browser pages on ORIGIN (scheme://host:port) call the service; "
        "repeatable; '*' allows any origin",
    )
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.h2c and args.tls_cert is not None:
        parser.error("--h2c is HTTP/2 without TLS; with TLS, HTTP/2 is negotiated by ALPN")
    if args.pause < 0:
        parser.error("--pause must not be negative")
    try:
        asgi_app(ElizaService(), cors_origins=args.cors_origin)
    except ValueError as err:  # a malformed --cors-origin
        parser.error(f"--cors-origin: {err}")
    logging.basicConfig(level=logging.WARNING, format="eliza_server: %(message)s")
    try:
        asyncio.run(
            run(
                args.host,
                args.port,
                tls_cert=args.tls_cert,
                tls_key=args.tls_key,
                seed=args.seed,
                pause=args.pause,
                cors_origins=args.cors_origin,
            )
        )
    except OSError as err:  # cannot bind, cannot load the certificate, ...
        print(f"eliza_server: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
