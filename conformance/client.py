"""The client under test for the Connect conformance runner (``connectconformance --mode client``).

The runner writes size-prefixed ``ClientCompatRequest`` messages (a 4-byte big-endian length,
then the binary message) to stdin until EOF. For each one this program issues the described RPC
to the runner's reference server with ``connectrpc.client.AsyncConnectClient`` and writes one
size-prefixed ``ClientCompatResponse`` to stdout. RPCs run concurrently: results are written as
they complete, under a lock so frames never interleave. On EOF it waits for the RPCs still in
flight, then exits; SIGTERM keeps its default meaning (exit at once).

Only the public API of connect-python is used, exactly as an application would use it. The
harness messages come from conformance/gen (``tools/gen_conformance_protos.sh``), under the
Python package ``connectrpc_conformance`` (see that script for why it is not
``connectrpc.conformance``).

Protocol of the runner: connectrpc.com/conformance ``docs/testing_clients.md``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import ssl
import struct
import sys
import tempfile
from collections.abc import AsyncIterator, Coroutine, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

# Fallback for runs from a checkout; under Bazel the generated code comes from runfiles first.
sys.path.append(str(Path(__file__).resolve().parent / "gen"))

import aiohttp
from connectrpc_conformance.v1 import client_compat_pb2 as compat
from connectrpc_conformance.v1 import config_pb2 as config
from connectrpc_conformance.v1 import service_pb2 as service
from google.protobuf.message import DecodeError, Message
from multidict import CIMultiDict

from connectrpc.client import (
    AsyncConnectClient,
    AsyncTransport,
    BidiStream,
    ClientOptions,
    HTTP1Transport,
    HTTP2Transport,
)
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.streams import StreamOutput
from connectrpc.unary import UnaryOutput

ReqT = TypeVar("ReqT", bound=Message)
ResT = TypeVar("ResT", bound=Message)

SERVICE = "connectrpc.conformance.v1.ConformanceService"

# At most this many RPCs in flight; the runner sends its whole batch at once.
MAX_CONCURRENCY = int(os.environ.get("CONFORMANCE_CLIENT_CONCURRENCY", "64"))


def _method(
    name: str,
    input: type[ReqT],
    output: type[ResT],
    stream_type: StreamType,
    idempotency: IdempotencyLevel = IdempotencyLevel.IDEMPOTENCY_UNKNOWN,
) -> MethodInfo[ReqT, ResT]:
    return MethodInfo(
        service=SERVICE,
        name=name,
        input=input,
        output=output,
        stream_type=stream_type,
        idempotency=idempotency,
    )


UNARY = _method("Unary", service.UnaryRequest, service.UnaryResponse, StreamType.UNARY)
UNIMPLEMENTED = _method(
    "Unimplemented", service.UnimplementedRequest, service.UnimplementedResponse, StreamType.UNARY
)
IDEMPOTENT_UNARY = _method(
    "IdempotentUnary",
    service.IdempotentUnaryRequest,
    service.IdempotentUnaryResponse,
    StreamType.UNARY,
    IdempotencyLevel.NO_SIDE_EFFECTS,
)
SERVER_STREAM = _method(
    "ServerStream",
    service.ServerStreamRequest,
    service.ServerStreamResponse,
    StreamType.SERVER_STREAM,
)
CLIENT_STREAM = _method(
    "ClientStream",
    service.ClientStreamRequest,
    service.ClientStreamResponse,
    StreamType.CLIENT_STREAM,
)
BIDI_STREAM = _method(
    "BidiStream", service.BidiStreamRequest, service.BidiStreamResponse, StreamType.BIDI_STREAM
)

# What each stream type of the runner may call.
METHODS: dict[int, dict[str, MethodInfo[Any, Any]]] = {
    config.STREAM_TYPE_UNARY: {m.name: m for m in (UNARY, UNIMPLEMENTED, IDEMPOTENT_UNARY)},
    config.STREAM_TYPE_CLIENT_STREAM: {CLIENT_STREAM.name: CLIENT_STREAM},
    config.STREAM_TYPE_SERVER_STREAM: {SERVER_STREAM.name: SERVER_STREAM},
    config.STREAM_TYPE_HALF_DUPLEX_BIDI_STREAM: {BIDI_STREAM.name: BIDI_STREAM},
    config.STREAM_TYPE_FULL_DUPLEX_BIDI_STREAM: {BIDI_STREAM.name: BIDI_STREAM},
}
DEFAULT_METHOD = {
    config.STREAM_TYPE_UNARY: UNARY.name,
    config.STREAM_TYPE_CLIENT_STREAM: CLIENT_STREAM.name,
    config.STREAM_TYPE_SERVER_STREAM: SERVER_STREAM.name,
    config.STREAM_TYPE_HALF_DUPLEX_BIDI_STREAM: BIDI_STREAM.name,
    config.STREAM_TYPE_FULL_DUPLEX_BIDI_STREAM: BIDI_STREAM.name,
}

CODECS = {config.CODEC_PROTO: "proto", config.CODEC_JSON: "json"}
# Which client transport to test: "aiohttp" (an aiohttp.ClientSession, the default),
# "http1" (connectrpc.client.HTTP1Transport) or "http2" (HTTP2Transport for HTTP/2 calls,
# HTTP1Transport for HTTP/1.1 ones). tools/conformance.sh runs all three.
TRANSPORT = os.environ.get("CONFORMANCE_CLIENT_TRANSPORT", "aiohttp")

PROTOCOLS: dict[int, str] = {
    config.PROTOCOL_CONNECT: "connect",
    config.PROTOCOL_GRPC_WEB: "grpc-web",
}
# HTTP/2 and gRPC: HTTP2Transport, and SyncHTTP2Transport for the sync client.
HTTP2 = TRANSPORT in ("http2", "sync-http2")
if HTTP2:
    PROTOCOLS[config.PROTOCOL_GRPC] = "grpc"

COMPRESSIONS: dict[int, str | None] = {
    config.COMPRESSION_UNSPECIFIED: None,
    config.COMPRESSION_IDENTITY: None,
    config.COMPRESSION_GZIP: "gzip",
    config.COMPRESSION_BR: "br",
    config.COMPRESSION_ZSTD: "zstd",
    config.COMPRESSION_DEFLATE: "deflate",
    config.COMPRESSION_SNAPPY: "snappy",
}


class UnsupportedRequestError(Exception):
    """The request cannot be issued; reported as ``ClientCompatResponse.error``."""


# ---------------------------------------------------------------------------------------------
# Conversions between the harness messages and the runtime's types.


def unpack_requests(req: compat.ClientCompatRequest, method: MethodInfo[ReqT, Any]) -> list[ReqT]:
    """The request messages, checked to be of the method's input type."""
    want = method.input.DESCRIPTOR.full_name
    messages: list[ReqT] = []
    for packed in req.request_messages:
        got = packed.type_url.rsplit("/", 1)[-1]
        if got != want:
            raise UnsupportedRequestError(f"{method.procedure} takes {want}, got a {got}")
        message = method.input()
        try:
            message.ParseFromString(packed.value)
        except DecodeError as exc:
            raise UnsupportedRequestError(
                f"request message does not decode as {want}: {exc}"
            ) from exc
        messages.append(message)
    return messages


def to_headers(headers: CIMultiDict[str]) -> list[service.Header]:
    """Group a multidict by (case-insensitive) name, keeping first-seen order and value order."""
    grouped: dict[str, service.Header] = {}
    for name, value in headers.items():
        key = name.lower()
        if key not in grouped:
            grouped[key] = service.Header(name=key)
        grouped[key].value.append(value)
    return list(grouped.values())


def to_error(error: ConnectError) -> service.Error:
    return service.Error(
        code="CODE_" + error.code.name,  # protobuf takes enum values by name
        message=error.message,
        details=[d.to_any() for d in error.details],
    )


def payload_of(message: Message | None) -> service.ConformancePayload:
    """The ``payload`` field of a response message (empty if the message is empty)."""
    payload = service.ConformancePayload()
    if message is not None and message.HasField("payload"):
        payload.CopyFrom(getattr(message, "payload"))  # noqa: B009  (typed per method)
    return payload


# ---------------------------------------------------------------------------------------------
# One RPC.


@dataclasses.dataclass
class Outcome:
    """What is observed of one RPC; becomes a ``ClientResponseResult``."""

    headers: CIMultiDict[str] = dataclasses.field(default_factory=CIMultiDict)
    trailers: CIMultiDict[str] = dataclasses.field(default_factory=CIMultiDict)
    payloads: list[service.ConformancePayload] = dataclasses.field(default_factory=list)
    error: service.Error | None = None
    num_unsent: int = 0

    def result(self) -> compat.ClientResponseResult:
        result = compat.ClientResponseResult(
            response_headers=to_headers(self.headers),
            payloads=self.payloads,
            response_trailers=to_headers(self.trailers),
            num_unsent_requests=self.num_unsent,
        )
        if self.error is not None:
            result.error.CopyFrom(self.error)
        return result


class Canceller:
    """Cancels one RPC the way an application would: by cancelling the task running it.

    The RPC's coroutine runs in its own task; ``cancel()`` (from a timer, or from inside the
    request stream) cancels that task, and ``run`` reports the RPC as ``canceled`` with
    whatever was observed before.
    """

    def __init__(self) -> None:
        self.requested = False
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.finished = asyncio.Event()

    def cancel(self) -> None:
        if not self.requested and self._task is not None and not self._task.done():
            self.requested = True
            self._task.cancel()

    def cancel_later(self, ms: int) -> None:
        self._timer = asyncio.get_running_loop().call_later(ms / 1000, self.cancel)

    async def run(self, coro: Coroutine[Any, Any, None], outcome: Outcome) -> None:
        self._task = asyncio.ensure_future(coro)
        try:
            await self._task
        except asyncio.CancelledError:
            if not self.requested:
                raise  # we are being cancelled ourselves
            outcome.error = service.Error(code=config.CODE_CANCELED, message="canceled by client")
        finally:
            self.finished.set()
            if self._timer is not None:
                self._timer.cancel()


class RequestMessages(Generic[ReqT]):
    """The request messages of a client or bidi stream, with what the runner asks of them:
    ``request_delay_ms`` before each, and when to cancel; counts how many the client took
    (for ``num_unsent_requests``). Iterating (``RequestStream`` here, its blocking twin in
    client_sync.py) sends them so."""

    def __init__(
        self,
        messages: Sequence[ReqT],
        delay_ms: int,
        cancel: compat.ClientCompatRequest.Cancel | None,
    ) -> None:
        self.messages = messages
        self.delay_ms = delay_ms
        self.cancel = cancel
        self.taken = 0

    @property
    def unsent(self) -> int:
        return len(self.messages) - self.taken


class RequestStream(RequestMessages[ReqT]):
    """The messages as an async iterable: cancels before close-send, or schedules the cancel
    after close-send, by cancelling the RPC's task."""

    def __init__(
        self,
        messages: Sequence[ReqT],
        delay_ms: int,
        cancel: compat.ClientCompatRequest.Cancel | None,
        canceller: Canceller,
    ) -> None:
        super().__init__(messages, delay_ms, cancel)
        self.canceller = canceller

    async def __aiter__(self) -> AsyncIterator[ReqT]:
        for message in self.messages:
            if self.delay_ms:
                await asyncio.sleep(self.delay_ms / 1000)
            self.taken += 1
            yield message
        if self.cancel is None:
            return
        timing = self.cancel.WhichOneof("cancel_timing")
        if timing == "before_close_send":
            self.canceller.cancel()
            # Never close the send side: the cancellation ends the RPC (and, normally, this
            # generator with it). Do not outlive the RPC in any case.
            await self.canceller.finished.wait()
        elif timing in (None, "after_close_send_ms"):
            self.canceller.cancel_later(self.cancel.after_close_send_ms)


async def collect_stream(
    stream: StreamOutput[Any],
    outcome: Outcome,
    cancel: compat.ClientCompatRequest.Cancel | None,
) -> None:
    """Receive a response stream into ``outcome``, cancelling after N responses if asked."""
    outcome.headers = stream.response_headers()
    after = (
        cancel.after_num_responses
        if cancel is not None and cancel.WhichOneof("cancel_timing") == "after_num_responses"
        else 0
    )
    canceled = False
    async for message in stream:
        outcome.payloads.append(payload_of(message))
        if after and len(outcome.payloads) == after:
            # An application that stops reading closes the stream.
            await stream.close()
            canceled = True
            break
    error = stream.error()
    if error is not None:
        outcome.error = to_error(error)
    elif canceled:
        outcome.error = service.Error(code=config.CODE_CANCELED, message="canceled by client")
    if not canceled:
        outcome.trailers = stream.response_trailers()


def fill_unary(output: UnaryOutput[Any], outcome: Outcome) -> None:
    outcome.headers = output.response_headers()
    outcome.trailers = output.response_trailers()
    error = output.error()
    if error is not None:
        outcome.error = to_error(error)
    else:
        outcome.payloads.append(payload_of(output.message()))


async def _full_duplex(
    stream: BidiStream[Any, Any],
    messages: Sequence[Any],
    delay_ms: int,
    after: int,
    outcome: Outcome,
    canceller: Canceller,
) -> None:
    """Send each request and read one response after it, as the reference client does; a
    send refused because the call ended, or a read that ends the stream, stops the loop
    (then the outcome has the error, headers and trailers)."""
    for index, message in enumerate(messages):
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        try:
            await stream.send(message)
        except ConnectError:
            await stream.receive()
            error = stream.error()
            outcome.error = to_error(error) if error is not None else None
            outcome.num_unsent = len(messages) - index
            outcome.headers = await stream.response_headers()
            outcome.trailers = stream.response_trailers()
            return
        reply = await stream.receive()
        if not outcome.headers:
            outcome.headers = await stream.response_headers()
        if reply is None:
            error = stream.error()
            if error is not None:
                outcome.error = to_error(error)
            outcome.trailers = stream.response_trailers()
            return
        outcome.payloads.append(payload_of(reply))
        if after and len(outcome.payloads) == after:
            canceller.cancel()
            await asyncio.sleep(0)  # the cancellation lands here


@dataclasses.dataclass(frozen=True)
class Rpc:
    """What the runner asks of one RPC, checked and converted to the runtime's types."""

    method: MethodInfo[Any, Any]
    messages: list[Any]
    headers: list[tuple[str, str]]
    timeout: float | None
    cancel: compat.ClientCompatRequest.Cancel | None
    timing: str | None  # which of the cancel timings, if any


def describe(req: compat.ClientCompatRequest) -> Rpc:
    """``req``'s RPC; ``UnsupportedRequestError`` for what no client here can issue."""
    stream_type = req.stream_type
    if stream_type not in METHODS:
        raise UnsupportedRequestError(
            f"stream type {config.StreamType.Name(stream_type)} unsupported"
        )
    if req.HasField("service") and req.service != SERVICE:
        raise UnsupportedRequestError(f"unknown service {req.service!r}")
    name = req.method if req.HasField("method") else DEFAULT_METHOD[stream_type]
    method = METHODS[stream_type].get(name)
    if method is None:
        raise UnsupportedRequestError(
            f"method {name!r} is not a {config.StreamType.Name(stream_type)} method"
        )
    messages = unpack_requests(req, method)
    if method.stream_type in (StreamType.UNARY, StreamType.SERVER_STREAM) and len(messages) != 1:
        raise UnsupportedRequestError(f"{method.procedure} needs one request, got {len(messages)}")
    cancel = req.cancel if req.HasField("cancel") else None
    return Rpc(
        method,
        messages,
        [(h.name, v) for h in req.request_headers for v in h.value],
        req.timeout_ms / 1000 if req.HasField("timeout_ms") else None,
        cancel,
        cancel.WhichOneof("cancel_timing") if cancel is not None else None,
    )


async def run_rpc(
    client: AsyncConnectClient, req: compat.ClientCompatRequest
) -> compat.ClientResponseResult:
    """Issue the RPC ``req`` describes and report what was observed."""
    rpc = describe(req)
    method, messages, headers = rpc.method, rpc.messages, rpc.headers
    timeout, cancel, timing = rpc.timeout, rpc.cancel, rpc.timing
    stream_type = req.stream_type

    outcome = Outcome()
    canceller = Canceller()

    if method.stream_type is StreamType.UNARY:

        async def unary() -> None:
            if cancel is not None and timing in (None, "after_close_send_ms"):
                canceller.cancel_later(cancel.after_close_send_ms)
            output = await client.call_unary(
                method,
                messages[0],
                extra_headers=headers,
                timeout_seconds=timeout,
                # The runner's flag means "enable GET": it applies to side-effect-free methods.
                use_get=req.use_get_http_method
                and method.idempotency is IdempotencyLevel.NO_SIDE_EFFECTS,
            )
            fill_unary(output, outcome)

        await canceller.run(unary(), outcome)

    elif method.stream_type is StreamType.SERVER_STREAM:

        async def server_stream() -> None:
            # The one request goes out (and the send side closes) as the call starts, so the
            # clock for "after close-send" starts now, not when the response headers arrive.
            if cancel is not None and timing in (None, "after_close_send_ms"):
                canceller.cancel_later(cancel.after_close_send_ms)
            stream = await client.call_server_stream(
                method, messages[0], extra_headers=headers, timeout_seconds=timeout
            )
            async with stream:
                await collect_stream(stream, outcome, cancel)

        await canceller.run(server_stream(), outcome)

    elif method.stream_type is StreamType.CLIENT_STREAM:
        requests = RequestStream(messages, req.request_delay_ms, cancel, canceller)

        async def client_stream() -> None:
            output = await client.call_client_stream(
                method, requests, extra_headers=headers, timeout_seconds=timeout
            )
            fill_unary(output, outcome)

        await canceller.run(client_stream(), outcome)
        if outcome.error is not None:
            outcome.num_unsent = requests.unsent

    elif stream_type == config.STREAM_TYPE_HALF_DUPLEX_BIDI_STREAM:
        # Half-duplex: all requests go out before any response is read.
        requests = RequestStream(messages, req.request_delay_ms, cancel, canceller)

        async def bidi_stream() -> None:
            stream = await client.call_bidi_stream(
                method, requests, extra_headers=headers, timeout_seconds=timeout
            )
            async with stream:
                await collect_stream(stream, outcome, cancel)

        await canceller.run(bidi_stream(), outcome)
        if outcome.error is not None:
            outcome.num_unsent = requests.unsent

    else:  # full-duplex: one response read after each request sent, through a BidiStream
        after = (
            cancel.after_num_responses
            if cancel is not None and timing == "after_num_responses"
            else 0
        )

        async def full_duplex() -> None:
            stream = BidiStream.open(
                functools.partial(client.call_bidi_stream, method),
                extra_headers=headers,
                timeout_seconds=timeout,
            )
            try:
                await _full_duplex(
                    stream, messages, req.request_delay_ms, after, outcome, canceller
                )
                if outcome.error is not None:
                    return
                if timing == "before_close_send":
                    canceller.cancel()
                    await asyncio.sleep(0)  # the cancellation lands here
                stream.close_send()
                if timing == "after_close_send_ms":
                    canceller.cancel_later(cancel.after_close_send_ms if cancel else 0)
                async for message in stream:
                    outcome.payloads.append(payload_of(message))
                outcome.headers = await stream.response_headers()
                error = stream.error()
                if error is not None:
                    outcome.error = to_error(error)
                outcome.trailers = stream.response_trailers()
            finally:
                await stream.close()

        await canceller.run(full_duplex(), outcome)

    return outcome.result()


# ---------------------------------------------------------------------------------------------
# Connection set-up.


def ssl_context(req: compat.ClientCompatRequest) -> ssl.SSLContext | None:
    """TLS trusting the runner's server certificate, with the client certificate if given."""
    if not req.server_tls_cert:
        return None
    context = ssl.create_default_context(cadata=req.server_tls_cert.decode("ascii"))
    if req.HasField("client_tls_creds"):
        # The ssl module only loads certificate chains from files.
        with tempfile.TemporaryDirectory() as tmp:
            cert = Path(tmp, "cert.pem")
            key = Path(tmp, "key.pem")
            cert.write_bytes(req.client_tls_creds.cert)
            key.write_bytes(req.client_tls_creds.key)
            context.load_cert_chain(cert, key)
    return context


def client_options(req: compat.ClientCompatRequest) -> ClientOptions:
    protocol = PROTOCOLS.get(req.protocol)
    if protocol is None:
        raise UnsupportedRequestError(f"protocol {config.Protocol.Name(req.protocol)} unsupported")
    versions = (config.HTTP_VERSION_1, config.HTTP_VERSION_2) if HTTP2 else (config.HTTP_VERSION_1,)
    if req.http_version not in versions:
        raise UnsupportedRequestError(f"{config.HTTPVersion.Name(req.http_version)} unsupported")
    codec = CODECS.get(req.codec)
    if codec is None:
        raise UnsupportedRequestError(f"codec {config.Codec.Name(req.codec)} unsupported")
    if req.compression not in COMPRESSIONS:
        raise UnsupportedRequestError(
            f"compression {config.Compression.Name(req.compression)} unsupported"
        )
    options = ClientOptions(
        protocol=protocol, codec=codec, send_compression=COMPRESSIONS[req.compression]
    )
    if req.message_receive_limit:  # zero: no limit requested, keep the runtime's default
        options = dataclasses.replace(options, read_max_bytes=req.message_receive_limit)
    return options


async def handle(req: compat.ClientCompatRequest) -> compat.ClientCompatResponse:
    response = compat.ClientCompatResponse(test_name=req.test_name)
    try:
        options = client_options(req)
        tls = ssl_context(req)
        scheme = "https" if tls is not None else "http"
        base_url = f"{scheme}://{req.host}:{req.port}"
        if TRANSPORT in ("http1", "http2"):
            transport: AsyncTransport = (
                HTTP2Transport(ssl_context=tls)
                if req.http_version == config.HTTP_VERSION_2
                else HTTP1Transport(ssl_context=tls)
            )
            try:
                client = AsyncConnectClient(base_url, transport, options=options)
                response.response.CopyFrom(await run_rpc(client, req))
            finally:
                await transport.aclose()
        else:
            connector = aiohttp.TCPConnector(ssl=tls if tls is not None else False)
            # No session-wide timeout: deadlines are per RPC (timeout_ms).
            session_timeout = aiohttp.ClientTimeout(total=None)
            async with aiohttp.ClientSession(
                connector=connector, timeout=session_timeout
            ) as session:
                client = AsyncConnectClient(base_url, session, options=options)
                response.response.CopyFrom(await run_rpc(client, req))
    except UnsupportedRequestError as exc:
        response.error.message = str(exc)
    except Exception as exc:  # a bug somewhere: report it against this test, keep going
        response.error.message = f"{type(exc).__name__}: {exc}"
    return response


# ---------------------------------------------------------------------------------------------
# The runner's stdin/stdout protocol.


class Output:
    """Size-prefixed messages to stdout; one writer at a time."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._out = sys.stdout.buffer

    async def write(self, message: Message) -> None:
        data = message.SerializeToString()
        async with self._lock:
            self._out.write(struct.pack(">I", len(data)) + data)
            self._out.flush()


async def read_requests() -> AsyncIterator[compat.ClientCompatRequest]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    while True:
        try:
            prefix = await reader.readexactly(4)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
            return
        (size,) = struct.unpack(">I", prefix)
        req = compat.ClientCompatRequest()
        req.ParseFromString(await reader.readexactly(size))
        yield req


async def main() -> None:
    output = Output()
    limit = asyncio.Semaphore(MAX_CONCURRENCY)
    tasks: set[asyncio.Task[None]] = set()

    async def one(req: compat.ClientCompatRequest) -> None:
        async with limit:
            response = await handle(req)
        await output.write(response)

    async for req in read_requests():
        task = asyncio.create_task(one(req))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*tasks)


if __name__ == "__main__":
    asyncio.run(main())
