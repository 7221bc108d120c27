"""Talk to the Eliza service through all four kinds of RPC.

Run it against a server (see ``eliza_server.py``)::

    uv run python examples/eliza_client.py --base-url http://127.0.0.1:8080

It introduces itself (server streaming), says a few things one at a time (unary, once with
HTTP GET), has a conversation (bidirectional streaming), delivers a monologue (client
streaming), and finally shows the error an empty sentence gets. Then it has a second
conversation over gRPC on HTTP/2, full duplex: each reply arrives before the next sentence
is sent (``--no-grpc`` skips it, for servers without HTTP/2).
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

# Fallback for runs from a checkout; under Bazel the generated code comes from runfiles first.
sys.path.append(str(Path(__file__).resolve().parent / "gen"))

import aiohttp
from eliza.v1 import eliza_pb2
from eliza.v1.eliza_connect import AsyncElizaServiceClient

from connectrpc.client import BidiStream, ClientOptions, HTTP2Transport
from connectrpc.errors import ConnectError

__all__ = ["CONVERSATION", "MONOLOGUE", "main", "run_conversation", "run_full_duplex"]

NAME = "Ada"

SAYINGS: Sequence[str] = (
    "Hello, Eliza.",
    "I am feeling a little sad today.",
)

CONVERSATION: Sequence[str] = (
    "My computer keeps crashing.",
    "I think you hate me.",
    "I remember my first program.",
    "Perhaps I need a holiday.",
    "Goodbye.",
)

MONOLOGUE: Sequence[str] = (
    "I have been writing code all week.",
    "Everybody says the tests are flaky.",
    "My mother thinks I work too much.",
)


async def run_conversation(
    base_url: str,
    *,
    out: Callable[[str], None] = print,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Run the whole demo conversation against ``base_url``, writing it with ``out``."""
    connector = aiohttp.TCPConnector(ssl=ssl_context) if ssl_context is not None else None
    async with aiohttp.ClientSession(connector=connector) as session:
        client = AsyncElizaServiceClient(base_url, session)

        out(f"== Introduce (server streaming) -- as {NAME}")
        async for intro in client.introduce(eliza_pb2.IntroduceRequest(name=NAME)):
            out(f"Eliza: {intro.sentence}")

        out("")
        out("== Say (unary)")
        for index, sentence in enumerate(SAYINGS):
            # Say has no side effects, so it may be sent with HTTP GET (cacheable).
            use_get = index == 1
            output = await client.call_say(eliza_pb2.SayRequest(sentence=sentence), use_get=use_get)
            reply = output.message_or_raise()
            out(f"You:   {sentence}" + ("   [HTTP GET]" if use_get else ""))
            out(f"Eliza: {reply.sentence}")
        version = output.response_headers().get("eliza-version", "(missing)")
        out(f"(response header eliza-version: {version})")

        out("")
        out("== Converse (bidirectional streaming)")

        async def conversation() -> AsyncIterator[eliza_pb2.ConverseRequest]:
            for sentence in CONVERSATION:
                yield eliza_pb2.ConverseRequest(sentence=sentence)

        # Over HTTP/1.1 (aiohttp) the requests all go out before the replies come back,
        # so print them pairwise once they are in.
        replies = [r.sentence async for r in client.converse(conversation())]
        for sentence, reply_text in zip(CONVERSATION, replies, strict=False):
            out(f"You:   {sentence}")
            out(f"Eliza: {reply_text}")

        out("")
        out("== Pontificate (client streaming)")
        for sentence in MONOLOGUE:
            out(f"You:   {sentence}")
        answer = await client.call_pontificate(
            eliza_pb2.PontificateRequest(sentence=s) for s in MONOLOGUE
        )
        out(f"Eliza: {answer.message_or_raise().sentence}")
        heard = answer.response_trailers().get("eliza-heard", "(missing)")
        out(f"(response trailer eliza-heard: {heard})")

        out("")
        out("== Say with an empty sentence")
        out("You:   (nothing)")
        try:
            await client.say(eliza_pb2.SayRequest(sentence=""))
        except ConnectError as err:
            out(f"Error: {err.code.value}: {err.message}")
        else:
            raise RuntimeError("an empty sentence should have failed with invalid_argument")


async def run_full_duplex(
    base_url: str,
    *,
    out: Callable[[str], None] = print,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Converse over gRPC on HTTP/2, one sentence at a time: each reply comes back while
    the request stream is still open (full duplex), through a ``BidiStream`` handle."""
    options = ClientOptions(protocol="grpc")
    async with AsyncElizaServiceClient(
        base_url, HTTP2Transport(ssl_context=ssl_context), options=options
    ) as client:
        out("== Converse again, over gRPC on HTTP/2 (full duplex)")
        async with BidiStream.open(client.call_converse, timeout_seconds=30) as stream:
            for sentence in CONVERSATION:
                await stream.send(eliza_pb2.ConverseRequest(sentence=sentence))
                out(f"You:   {sentence}")
                reply = await stream.receive()
                if reply is None:
                    break
                out(f"Eliza: {reply.sentence}")
            stream.close_send()
            async for reply in stream:
                out(f"Eliza: {reply.sentence}")
        error = stream.error()
        if error is not None:
            raise error
        turns = stream.response_trailers().get("eliza-turns", "(missing)")
        out(f"(response trailer eliza-turns: {turns})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Talk to the Eliza example service.")
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8080")
    parser.add_argument("--ca-cert", help="PEM CA bundle to verify an https server with")
    parser.add_argument(
        "--no-grpc", action="store_true", help="skip the gRPC conversation over HTTP/2"
    )
    args = parser.parse_args(argv)
    context = ssl.create_default_context(cafile=args.ca_cert) if args.ca_cert else None

    async def both() -> None:
        await run_conversation(args.base_url, ssl_context=context)
        if not args.no_grpc:
            print()
            # A context of its own: HTTP2Transport sets ALPN on the one it is given.
            h2_context = ssl.create_default_context(cafile=args.ca_cert) if args.ca_cert else None
            await run_full_duplex(args.base_url, ssl_context=h2_context)

    try:
        asyncio.run(both())
    except ConnectError as err:
        print(f"eliza_client: RPC failed: {err}", file=sys.stderr)
        return 1
    except aiohttp.ClientError as err:
        print(f"eliza_client: cannot reach {args.base_url}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
