"""Public header types: ``HeaderInput`` for extra request headers."""

from connectrpc._core.headers import HeaderInput

__all__ = ["HeaderInput"]
