"""Descriptions of RPC methods, as emitted by ``protoc-gen-connect_python``."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Generic, TypeVar

from google.protobuf.message import Message

__all__ = [
    "RUNTIME_API_VERSION",
    "IdempotencyLevel",
    "MethodInfo",
    "StreamType",
    "require_runtime_api",
]

RUNTIME_API_VERSION = 1
"""The generated-code API this runtime implements; bumped on incompatible changes."""

ReqT = TypeVar("ReqT", bound=Message)
ResT = TypeVar("ResT", bound=Message)


class StreamType(enum.Enum):
    """Which sides of an RPC send a stream of messages."""

    UNARY = "unary"
    CLIENT_STREAM = "client_stream"
    SERVER_STREAM = "server_stream"
    BIDI_STREAM = "bidi_stream"

    @property
    def client_streams(self) -> bool:
        return self in (StreamType.CLIENT_STREAM, StreamType.BIDI_STREAM)

    @property
    def server_streams(self) -> bool:
        return self in (StreamType.SERVER_STREAM, StreamType.BIDI_STREAM)


class IdempotencyLevel(enum.Enum):
    """``google.protobuf.MethodOptions.idempotency_level``.

    Connect lets clients call ``NO_SIDE_EFFECTS`` methods with HTTP GET, which makes them
    cacheable (https://connectrpc.com/docs/protocol#unary-get-request).
    """

    IDEMPOTENCY_UNKNOWN = 0
    NO_SIDE_EFFECTS = 1
    IDEMPOTENT = 2


@dataclass(frozen=True)
class MethodInfo(Generic[ReqT, ResT]):
    """One RPC: its fully qualified service, its name, message types and stream type."""

    service: str
    name: str
    input: type[ReqT]
    output: type[ResT]
    stream_type: StreamType
    idempotency: IdempotencyLevel = IdempotencyLevel.IDEMPOTENCY_UNKNOWN

    @property
    def procedure(self) -> str:
        """The HTTP path of the method: ``/package.Service/Method``."""
        return f"/{self.service}/{self.name}"


def require_runtime_api(version: int) -> None:
    """Fail at import time when generated code needs a runtime API this one lacks."""
    if version != RUNTIME_API_VERSION:
        raise ImportError(
            f"this code was generated for connect-python runtime API version {version}, but "
            f"the installed connectrpc runtime implements version {RUNTIME_API_VERSION}; "
            "regenerate the code with the protoc-gen-connect_python that matches the "
            "installed connect-python, or install the matching connect-python version"
        )
