"""The server's IO layer: the ASGI application and what handlers see."""
