"""The pure core: bytes in, bytes out, no IO (no asyncio, no HTTP library)."""
