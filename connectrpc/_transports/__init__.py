"""Client transports: the seam between the protocols and an HTTP implementation."""
