"""The wire protocols (Connect, gRPC and gRPC-Web), both sides each, as pure code behind the client and server interfaces."""
