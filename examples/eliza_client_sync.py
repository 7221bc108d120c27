"""Talk to the Eliza service with the blocking client, through all four kinds of RPC.

Run it against a server (see ``eliza_server.py``, or ``eliza_server_wsgi.py`` for the WSGI
one)::

    uv run python examples/eliza_client_sync.py --base-url http://127.0.0.1:8080

The same conversation as ``eliza_client.py``, written as plain blocking code: no event
loop, ``for`` loops over streams, ``with`` for the client and its streams. Bidi streams are
half-duplex here (HTTP/1.1): every sentence is sent, then the replies are read.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

# Fallback for runs from a checkout; under Bazel the generated code comes from runfiles first.
sys.path.append(str(Path(__file__).resolve().parent / "gen"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from eliza.v1 import eliza_pb2
from eliza.v1.eliza_connect import ElizaServiceClient
from eliza_client import CONVERSATION, MONOLOGUE, NAME, SAYINGS

from connectrpc.client import SyncHTTP1Transport
from connectrpc.errors import ConnectError

__all__ = ["main", "run_conversation_sync"]


def run_conversation_sync(
    base_url: str,
    *,
    out: Callable[[str], None] = print,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Run the demo conversation against ``base_url`` with ``ElizaServiceClient``."""
    with ElizaServiceClient(base_url, SyncHTTP1Transport(ssl_context=ssl_context)) as client:
        out(f"== Introduce (server streaming, blocking client) -- as {NAME}")
        for intro in client.introduce(eliza_pb2.IntroduceRequest(name=NAME)):
            out(f"Eliza: {intro.sentence}")

        out("")
        out("== Say (unary)")
        for index, sentence in enumerate(SAYINGS):
            use_get = index == 1
            output = client.call_say(eliza_pb2.SayRequest(sentence=sentence), use_get=use_get)
            out(f"You:   {sentence}" + ("   [HTTP GET]" if use_get else ""))
            out(f"Eliza: {output.message_or_raise().sentence}")
        version = output.response_headers().get("eliza-version", "(missing)")
        out(f"(response header eliza-version: {version})")

        out("")
        out("== Converse (bidirectional streaming, half duplex)")
        requests = (eliza_pb2.ConverseRequest(sentence=s) for s in CONVERSATION)
        with client.call_converse(requests, timeout_seconds=30) as stream:
            replies = [reply.sentence for reply in stream]
        if (error := stream.error()) is not None:
            raise error
        for sentence, reply_text in zip(CONVERSATION, replies, strict=False):
            out(f"You:   {sentence}")
            out(f"Eliza: {reply_text}")

        out("")
        out("== Pontificate (client streaming)")
        for sentence in MONOLOGUE:
            out(f"You:   {sentence}")
        answer = client.call_pontificate(
            eliza_pb2.PontificateRequest(sentence=s) for s in MONOLOGUE
        )
        out(f"Eliza: {answer.message_or_raise().sentence}")
        heard = answer.response_trailers().get("eliza-heard", "(missing)")
        out(f"(response trailer eliza-heard: {heard})")

        out("")
        out("== Say with an empty sentence")
        out("You:   (nothing)")
        try:
            client.say(eliza_pb2.SayRequest(sentence=""))
        except ConnectError as err:
            out(f"Error: {err.code.value}: {err.message}")
        else:
            raise RuntimeError("an empty sentence should have failed with invalid_argument")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Talk to Eliza with the blocking client.")
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8080")
    parser.add_argument("--ca-cert", help="PEM CA bundle to verify an https server with")
    args = parser.parse_args(argv)
    context = ssl.create_default_context(cafile=args.ca_cert) if args.ca_cert else None
    try:
        run_conversation_sync(args.base_url, ssl_context=context)
    except ConnectError as err:
        print(f"eliza_client_sync: RPC failed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
