"""Public error types: ``ConnectError``, its ``Code`` and ``ErrorDetail``."""

from ._code import Code
from ._error import ConnectError, ErrorDetail

__all__ = ["Code", "ConnectError", "ErrorDetail"]
