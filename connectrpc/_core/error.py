"""The one error type of the library: an RPC status with code, message and details.

An error either comes off the wire (the peer sent it) or is produced locally (a timeout,
a protocol violation by the peer, a failed connection). ``ConnectError.wire`` tells which.
Details are protobuf messages sent as ``google.protobuf.Any``; see
https://connectrpc.com/docs/protocol#error-end-stream for their JSON form.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message
from multidict import CIMultiDict

from connectrpc._core.code import Code
from connectrpc._core.headers import HeaderInput, to_multidict

__all__ = ["ConnectError", "ErrorDetail", "canceled", "deadline_exceeded", "detached"]

M = TypeVar("M", bound=Message)

_TYPE_URL_PREFIX = "type.googleapis.com/"


@dataclass(frozen=True)
class ErrorDetail:
    """One error detail: a serialized protobuf message and its fully qualified type name.

    ``debug`` holds the optional human-readable JSON form a Connect server may add; it is
    informational only and never used to decode the detail.
    """

    type_name: str
    value: bytes
    debug: Any = None

    @classmethod
    def from_message(cls, message: Message) -> ErrorDetail:
        """Wrap a protobuf message as a detail."""
        return cls(message.DESCRIPTOR.full_name, message.SerializeToString())

    @classmethod
    def from_any(cls, packed: any_pb2.Any) -> ErrorDetail:
        """Wrap a ``google.protobuf.Any`` as a detail."""
        type_name = packed.type_url.rsplit("/", 1)[-1]
        return cls(type_name, packed.value)

    def to_any(self) -> any_pb2.Any:
        """The detail as a ``google.protobuf.Any``."""
        return any_pb2.Any(type_url=_TYPE_URL_PREFIX + self.type_name, value=self.value)

    def unpack(self, message_type: type[M]) -> M | None:
        """Decode the detail as ``message_type``; ``None`` if it holds another type."""
        if message_type.DESCRIPTOR.full_name != self.type_name:
            return None
        message = message_type()
        try:
            message.ParseFromString(self.value)
        except DecodeError:
            return None
        return message


class ConnectError(Exception):
    """An RPC failed with ``code``.

    Raised by the plain client methods, returned by the ``call_`` methods' ``.error()``, and
    raised by service handlers to send a status to the client.

    Attributes:
        code: the status code.
        message: the developer-facing message (may be empty).
        details: protobuf details, in the order sent.
        metadata: on the client, for an error the server sent, the response headers
            followed by the trailers; on the server, extra trailers to send with it.
        wire: ``True`` when the error was received from the peer rather than produced locally.
    """

    def __init__(
        self,
        code: Code,
        message: str = "",
        *,
        details: Iterable[ErrorDetail | Message] = (),
        metadata: HeaderInput | None = None,
        wire: bool = False,
    ) -> None:
        self.code = code
        self.message = message
        self.details: tuple[ErrorDetail, ...] = tuple(
            d if isinstance(d, ErrorDetail) else ErrorDetail.from_message(d) for d in details
        )
        self.metadata: CIMultiDict[str] = to_multidict(metadata)
        self.wire = wire
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.message:
            return f"{self.code.value}: {self.message}"
        return self.code.value

    def __repr__(self) -> str:
        return f"ConnectError({self.code!r}, {self.message!r}, details={len(self.details)})"


def detached(error: ConnectError) -> ConnectError:
    """``error`` without its traceback, cause or context, for keeping after it was caught.

    A caught exception's traceback references every frame it passed through, with their
    locals (request bodies, decompressed data), and a frame that stores the exception in a
    local makes a reference cycle that only the garbage collector frees. Errors that are kept
    (to answer with, or to return to the caller) are stored detached. Their ``message``
    already says what went wrong.
    """
    error.__traceback__ = None
    error.__cause__ = error.__context__ = None
    return error


def deadline_exceeded() -> ConnectError:
    """The error every layer (async or blocking) reports when an RPC's deadline passes."""
    return ConnectError(Code.DEADLINE_EXCEEDED, "the RPC deadline was exceeded")


def canceled() -> ConnectError:
    """The error every layer reports when a call is cancelled (a task cancelled, a
    ``CancelToken`` cancelled, a stream closed from another thread)."""
    return ConnectError(Code.CANCELED, "the call was cancelled")
