"""Public header types: ``HeaderInput`` for extra request headers."""

from ._headers import HeaderInput

__all__ = ["HeaderInput"]
