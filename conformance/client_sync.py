"""The blocking client under test for the conformance runner (``--mode client``).

The same harness as ``conformance/client.py`` (which this imports for everything that is
not IO: the method table, the conversions, ``Outcome``), with each RPC issued by
``connectrpc.client.ConnectClient`` over ``SyncHTTP1Transport`` (HTTP/2 cases, with
``CONFORMANCE_CLIENT_TRANSPORT=sync-http2``: ``SyncHTTP2Transport``) in a worker thread, the
way a threaded application uses the sync client. Cancellation is what such an application
would do: a ``CancelToken`` cancelled from a timer thread (after close-send), from inside
the request iterator (before close-send), or closing the response stream after N messages.

The runner writes size-prefixed ``ClientCompatRequest`` messages to stdin until EOF; each
result is written as a size-prefixed ``ClientCompatResponse`` as soon as it is known.
"""

from __future__ import annotations

import concurrent.futures
import struct
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

# client.py sits beside this file; Bazel's launcher does not put this directory on the path.
sys.path.insert(0, str(Path(__file__).parent))

from client import (
    CLIENT_STREAM,
    MAX_CONCURRENCY,
    Outcome,
    RequestMessages,
    UnsupportedRequestError,
    client_options,
    describe,
    fill_unary,
    payload_of,
    ssl_context,
    to_error,
)
from connectrpc_conformance.v1 import client_compat_pb2 as compat
from connectrpc_conformance.v1 import config_pb2 as config
from google.protobuf.message import Message

from connectrpc.client import (
    CancelToken,
    ConnectClient,
    SyncHTTP1Transport,
    SyncHTTP2Transport,
    SyncTransport,
)
from connectrpc.method import IdempotencyLevel, StreamType
from connectrpc.streams import SyncStreamOutput

ReqT = TypeVar("ReqT", bound=Message)

Cancel = compat.ClientCompatRequest.Cancel


class RequestStream(RequestMessages[ReqT]):
    """The messages as a plain iterable: cancels the call's token before close-send, or
    from a timer thread after close-send."""

    def __init__(
        self, messages: Sequence[ReqT], delay_ms: int, cancel: Cancel | None, token: CancelToken
    ) -> None:
        super().__init__(messages, delay_ms, cancel)
        self.token = token

    def __iter__(self) -> Iterator[ReqT]:
        for message in self.messages:
            if self.delay_ms:
                time.sleep(self.delay_ms / 1000)
            self.taken += 1
            yield message
        if self.cancel is None:
            return
        timing = self.cancel.WhichOneof("cancel_timing")
        if timing == "before_close_send":
            self.token.cancel()  # the send side never closes: the call ends canceled
        elif timing in (None, "after_close_send_ms"):
            cancel_later(self.token, self.cancel.after_close_send_ms)


def cancel_later(token: CancelToken, ms: int) -> None:
    timer = threading.Timer(ms / 1000, token.cancel)
    timer.daemon = True
    timer.start()


def collect_stream(stream: SyncStreamOutput[Any], outcome: Outcome, cancel: Cancel | None) -> None:
    """Receive a response stream into ``outcome``, closing it after N responses if asked."""
    outcome.headers = stream.response_headers()
    after = (
        cancel.after_num_responses
        if cancel is not None and cancel.WhichOneof("cancel_timing") == "after_num_responses"
        else 0
    )
    canceled = False
    for message in stream:
        outcome.payloads.append(payload_of(message))
        if after and len(outcome.payloads) == after:
            stream.close()  # an application that stops reading closes the stream
            canceled = True
            break
    error = stream.error()
    if error is not None:
        outcome.error = to_error(error)
    if not canceled:
        outcome.trailers = stream.response_trailers()


def run_rpc(client: ConnectClient, req: compat.ClientCompatRequest) -> compat.ClientResponseResult:
    """Issue the RPC ``req`` describes and report what was observed."""
    if req.stream_type == config.STREAM_TYPE_FULL_DUPLEX_BIDI_STREAM:
        raise UnsupportedRequestError(
            "full-duplex bidi unsupported: the sync client is half-duplex"
        )
    rpc = describe(req)
    method, messages, headers = rpc.method, rpc.messages, rpc.headers
    timeout, cancel, timing = rpc.timeout, rpc.cancel, rpc.timing
    token = CancelToken()
    outcome = Outcome()
    if (
        cancel is not None
        and timing in (None, "after_close_send_ms")
        and method.stream_type not in (StreamType.CLIENT_STREAM, StreamType.BIDI_STREAM)
    ):
        # One request: the send side closes as the call starts.
        cancel_later(token, cancel.after_close_send_ms)

    if method.stream_type is StreamType.UNARY:
        output = client.call_unary(
            method,
            messages[0],
            extra_headers=headers,
            timeout_seconds=timeout,
            use_get=req.use_get_http_method
            and method.idempotency is IdempotencyLevel.NO_SIDE_EFFECTS,
            cancel=token,
        )
        fill_unary(output, outcome)
    elif method.stream_type is StreamType.SERVER_STREAM:
        with client.call_server_stream(
            method, messages[0], extra_headers=headers, timeout_seconds=timeout, cancel=token
        ) as stream:
            collect_stream(stream, outcome, cancel)
    elif method is CLIENT_STREAM:
        requests = RequestStream(messages, req.request_delay_ms, cancel, token)
        output = client.call_client_stream(
            method, requests, extra_headers=headers, timeout_seconds=timeout, cancel=token
        )
        fill_unary(output, outcome)
        if outcome.error is not None:
            outcome.num_unsent = requests.unsent
    else:  # half-duplex bidi: every request goes out before any response is read
        requests = RequestStream(messages, req.request_delay_ms, cancel, token)
        with client.call_bidi_stream(
            method, requests, extra_headers=headers, timeout_seconds=timeout, cancel=token
        ) as stream:
            collect_stream(stream, outcome, cancel)
        if outcome.error is not None:
            outcome.num_unsent = requests.unsent
    return outcome.result()


def handle(req: compat.ClientCompatRequest) -> compat.ClientCompatResponse:
    response = compat.ClientCompatResponse(test_name=req.test_name)
    try:
        options = client_options(req)
        tls = ssl_context(req)
        base_url = f"{'https' if tls is not None else 'http'}://{req.host}:{req.port}"
        transport: SyncTransport = (
            SyncHTTP2Transport(ssl_context=tls)
            if req.http_version == config.HTTP_VERSION_2
            else SyncHTTP1Transport(ssl_context=tls)
        )
        with ConnectClient(base_url, transport, options=options) as client:
            response.response.CopyFrom(run_rpc(client, req))
    except UnsupportedRequestError as exc:
        response.error.message = str(exc)
    except Exception as exc:  # a bug somewhere: report it against this test, keep going
        response.error.message = f"{type(exc).__name__}: {exc}"
    return response


def read_requests() -> Iterator[compat.ClientCompatRequest]:
    stdin = sys.stdin.buffer
    while prefix := stdin.read(4):
        if len(prefix) < 4:
            raise EOFError("truncated size prefix on stdin")
        (size,) = struct.unpack(">I", prefix)
        req = compat.ClientCompatRequest()
        req.ParseFromString(stdin.read(size))
        yield req


def main() -> None:
    lock = threading.Lock()
    out = sys.stdout.buffer

    def one(req: compat.ClientCompatRequest) -> None:
        data = handle(req).SerializeToString()
        with lock:
            out.write(struct.pack(">I", len(data)) + data)
            out.flush()

    with concurrent.futures.ThreadPoolExecutor(MAX_CONCURRENCY) as pool:
        for future in [pool.submit(one, req) for req in read_requests()]:
            future.result()


if __name__ == "__main__":
    main()
