"""Status codes shared by the Connect, gRPC and gRPC-Web protocols.

Connect names codes by lower-snake-case strings on the wire (``"deadline_exceeded"``);
gRPC uses the numbers from ``google.rpc.Code``. Each code also has the HTTP status a Connect
server uses for a unary error. See https://connectrpc.com/docs/protocol#error-codes.
"""

from __future__ import annotations

import enum

__all__ = ["Code", "code_from_http_status"]


class Code(enum.Enum):
    """The 16 RPC status codes, valued by their Connect wire names."""

    CANCELED = "canceled"
    UNKNOWN = "unknown"
    INVALID_ARGUMENT = "invalid_argument"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    PERMISSION_DENIED = "permission_denied"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    FAILED_PRECONDITION = "failed_precondition"
    ABORTED = "aborted"
    OUT_OF_RANGE = "out_of_range"
    UNIMPLEMENTED = "unimplemented"
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"
    DATA_LOSS = "data_loss"
    UNAUTHENTICATED = "unauthenticated"

    @property
    def grpc_value(self) -> int:
        """The numeric code gRPC sends in ``grpc-status``."""
        return _GRPC_VALUES[self]

    @property
    def http_status(self) -> int:
        """The HTTP status a Connect server sends for a unary error with this code."""
        return _HTTP_STATUS[self]

    @classmethod
    def from_wire(cls, name: str) -> Code | None:
        """The code for a Connect wire name, or ``None`` if the name is not a code."""
        return _BY_NAME.get(name)

    @classmethod
    def from_grpc_value(cls, value: int) -> Code | None:
        """The code for a gRPC numeric status (``0`` is OK and has no code)."""
        return _BY_GRPC.get(value)

    def __str__(self) -> str:
        return self.value


_GRPC_VALUES: dict[Code, int] = {code: i + 1 for i, code in enumerate(Code)}
_BY_GRPC: dict[int, Code] = {v: k for k, v in _GRPC_VALUES.items()}
_BY_NAME: dict[str, Code] = {code.value: code for code in Code}

_HTTP_STATUS: dict[Code, int] = {
    Code.CANCELED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}


def code_from_http_status(status: int) -> Code:
    """The code implied by an HTTP status when the body carries no RPC error.

    This is the mapping gRPC and Connect share for responses from proxies and other
    non-RPC intermediaries (https://connectrpc.com/docs/protocol#http-to-error-code).
    """
    if status == 400:
        return Code.INTERNAL
    if status == 401:
        return Code.UNAUTHENTICATED
    if status == 403:
        return Code.PERMISSION_DENIED
    if status == 404:
        return Code.UNIMPLEMENTED
    if status in (429, 502, 503, 504):
        return Code.UNAVAILABLE
    return Code.UNKNOWN
