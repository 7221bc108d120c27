"""``UnaryOutput``: the result of a call with one response message (unary, client stream)."""

from __future__ import annotations

from typing import Generic, TypeVar

from multidict import CIMultiDict

from connectrpc._core.error import ConnectError

__all__ = ["UnaryOutput"]

T = TypeVar("T")


class UnaryOutput(Generic[T]):
    """The response message or error of an RPC, with its response headers and trailers.

    Returned by the ``call_`` client methods, which report RPC failures here instead of
    raising them.
    """

    __slots__ = ("_error", "_headers", "_message", "_trailers")

    def __init__(
        self,
        message: T | None,
        error: ConnectError | None,
        headers: CIMultiDict[str],
        trailers: CIMultiDict[str],
    ) -> None:
        self._message = message
        self._error = error
        self._headers = headers
        self._trailers = trailers

    def message(self) -> T | None:
        """The response message, or ``None`` if the RPC failed."""
        return self._message

    def message_or_raise(self) -> T:
        """The response message; raises the RPC's ``ConnectError`` if it failed."""
        if self._error is not None:
            raise self._error
        assert self._message is not None
        return self._message

    def error(self) -> ConnectError | None:
        """The RPC's error, or ``None`` if it succeeded."""
        return self._error

    def response_headers(self) -> CIMultiDict[str]:
        """The response headers (empty if no response arrived)."""
        return self._headers

    def response_trailers(self) -> CIMultiDict[str]:
        """The response trailers (empty if no response arrived)."""
        return self._trailers
