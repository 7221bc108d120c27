"""asyncio plumbing that the client and the server share."""
