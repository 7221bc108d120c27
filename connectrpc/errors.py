"""Public error types: ``ConnectError``, its ``Code`` and ``ErrorDetail``."""

from connectrpc._core.code import Code
from connectrpc._core.error import ConnectError, ErrorDetail

__all__ = ["Code", "ConnectError", "ErrorDetail"]
