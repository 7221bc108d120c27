"""The interface each wire protocol implements for the client, free of IO.

A protocol turns a call into an HTTP request (method, path, headers, body encoding) and
interprets the response head and body. Connect implements it in ``_protocol_connect``;
gRPC and gRPC-Web implement the same interface, so the IO layers never change per protocol.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from multidict import CIMultiDict

from connectrpc._core.codec import Codec
from connectrpc._core.compression import Compression
from connectrpc._core.error import ConnectError
from connectrpc._core.headers import Headers

__all__ = ["ClientProtocol", "RequestHead", "ResponseDecoder", "ResponseStart"]


@dataclass(frozen=True)
class RequestHead:
    """Method, path-and-query and headers of an outgoing RPC request."""

    method: str
    path: str
    headers: CIMultiDict[str]


class ResponseDecoder(abc.ABC):
    """Turns response body bytes into message payloads, then the final status.

    ``feed`` and ``finish`` return decompressed message payloads for the codec to decode, and
    raise ``ConnectError`` when the peer breaks the protocol. The status the peer sent ends up
    in ``error`` and ``trailers`` once ``finish`` has returned.
    """

    error: ConnectError | None
    trailers: CIMultiDict[str]

    @abc.abstractmethod
    def feed(self, data: bytes) -> list[bytes]: ...

    @abc.abstractmethod
    def finish(self, trailers: Headers | None = None) -> list[bytes]:
        """The body is complete; ``trailers`` are the HTTP trailers, where the transport
        has them (gRPC's status travels there)."""


@dataclass(frozen=True)
class ResponseStart:
    """How to read a response: its visible headers, and either a decoder or a final error.

    ``error_body`` means the body is an error document to read whole and pass to
    ``ClientProtocol.decode_error_body``.
    """

    headers: CIMultiDict[str]
    decoder: ResponseDecoder | None = None
    error: ConnectError | None = None
    error_body: bool = False
    trailers: CIMultiDict[str] | None = None


class ClientProtocol(abc.ABC):
    """One wire protocol, client side.

    Every protocol is built from the same client options: the codec, the compressions the
    client accepts for responses, its ``user-agent`` and the largest response message.
    """

    def __init__(
        self,
        codec: Codec,
        accept_compression: tuple[str, ...],
        user_agent: str,
        read_max_bytes: int | None,
    ) -> None:
        self._codec = codec
        self._accept = ", ".join(accept_compression) if accept_compression else None
        self._user_agent = user_agent
        self._limit = read_max_bytes

    @property
    def codec(self) -> Codec:
        return self._codec

    @abc.abstractmethod
    def request_head(
        self,
        procedure: str,
        *,
        stream: bool,
        timeout: float | None,
        send_compression: Compression | None,
        get_message: bytes | None = None,
    ) -> RequestHead:
        """The request line and protocol headers; ``get_message`` selects a unary GET."""

    @abc.abstractmethod
    def encode_unary(self, data: bytes, compression: Compression | None) -> tuple[bytes, bool]:
        """A unary request body, and whether it was compressed."""

    @abc.abstractmethod
    def encode_stream_message(self, data: bytes, compression: Compression | None) -> bytes:
        """One framed message of a request stream."""

    @abc.abstractmethod
    def start_response(self, status: int, headers: Headers, *, stream: bool) -> ResponseStart:
        """Validate a response head and choose how to read its body."""

    @abc.abstractmethod
    def decode_error_body(
        self, status: int, headers: Headers, body: bytes, limit: int | None
    ) -> ConnectError:
        """The error carried by an error response body."""
