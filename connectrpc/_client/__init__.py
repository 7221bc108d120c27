"""The client's IO layer: calls driven through a protocol over a transport."""
