"""Opt-in fixes for hypercorn's HTTP/2 that RPC traffic needs (hypercorn 0.18 and earlier).

gRPC and full-duplex streams routinely end a response while the client is still sending,
which HTTP/2 allows. hypercorn then fails the whole connection, and every call multiplexed
on it, in two ways that are not in connectrpc (details in ``patch_hypercorn_h2``). Call
``patch_hypercorn_h2()`` once, before serving, when you run the app under hypercorn over
HTTP/2; or run a server without these flaws (docs/DEPLOYMENT.md). The conformance server and
our tests run with it.

It patches hypercorn's and h2's classes in place, for the whole process; it is idempotent.
"""

from __future__ import annotations

__all__ = ["patch_hypercorn_h2"]

_PATCHED = False


def patch_hypercorn_h2() -> None:
    """Keep hypercorn's HTTP/2 connections alive when a client sends after the answer.

    * hypercorn drops a stream from ``H2Protocol.streams`` once the application completes its
      response, and then indexes that dict for every later DATA frame of the stream. A
      client still uploading when the server answers (an error before the request stream
      ends, a full-duplex stream ending first, a deadline) raises ``KeyError`` inside the
      connection task, and every other stream on the connection is torn down. Upstream:
      hypercorn issue #329. This treats such DATA as hypercorn already treats the stream's
      end: ignored, with its flow-control credit returned (and the WINDOW_UPDATE sent at
      once, or a client blocked on flow control would wait forever).
    * h2 treats a request body shorter than its declared content-length as a connection
      error. Go's HTTP/2 client ends its request stream early once the server has answered;
      for a stream already answered the short body is moot, so it is ignored there.
    """
    global _PATCHED
    if _PATCHED:
        return
    import h2.events
    import h2.exceptions
    import h2.stream
    from hypercorn.protocol.h2 import H2Protocol

    original = H2Protocol._handle_events

    async def handle_events(self: H2Protocol, events: list[h2.events.Event]) -> None:
        for event in events:
            if isinstance(event, h2.events.DataReceived) and event.stream_id not in self.streams:
                self.connection.acknowledge_received_data(
                    event.flow_controlled_length, event.stream_id
                )
                await self._flush()
                continue
            await original(self, [event])

    setattr(H2Protocol, "_handle_events", handle_events)  # noqa: B010

    original_track = h2.stream.H2Stream._track_content_length

    def track_content_length(self: h2.stream.H2Stream, length: int, end_stream: bool) -> None:
        try:
            original_track(self, length, end_stream)
        except h2.exceptions.InvalidBodyLengthError:
            answered = (h2.stream.StreamState.HALF_CLOSED_LOCAL, h2.stream.StreamState.CLOSED)
            if self.state_machine.state not in answered:
                raise

    setattr(h2.stream.H2Stream, "_track_content_length", track_content_length)  # noqa: B010
    _PATCHED = True
