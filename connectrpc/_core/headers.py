"""Header containers and the ``HeaderInput`` type accepted for caller-supplied headers."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping

from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

__all__ = ["HeaderInput", "Headers", "b64decode_lenient", "to_multidict"]

Headers = CIMultiDict[str] | CIMultiDictProxy[str]
"""Headers as received: a mutable or read-only case-insensitive multidict."""

HeaderInput = (
    Mapping[str, str]
    | CIMultiDict[str]
    | CIMultiDictProxy[str]
    | MultiDict[str]
    | MultiDictProxy[str]
    | Iterable[tuple[str, str]]
)
"""Headers as a ``dict``, any multidict, or an iterable of ``(name, value)`` pairs.

Repeated names are kept in order when the input can hold them (multidicts, pair lists).
"""


def to_multidict(headers: HeaderInput | None) -> CIMultiDict[str]:
    """Copy ``headers`` into a new case-insensitive multidict."""
    if headers is None:
        return CIMultiDict()
    if isinstance(headers, (CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy)):
        return CIMultiDict(headers)
    if isinstance(headers, Mapping):
        return CIMultiDict(headers.items())
    return CIMultiDict(headers)


def b64decode_lenient(value: str) -> bytes:
    """Decode base64 as peers send it in headers, query strings and error details: the
    standard or the URL-safe alphabet, padded or not. Raises ``binascii.Error`` (a
    ``ValueError``) on anything else."""
    value = value.strip()
    return base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
