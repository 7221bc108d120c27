"""gRPC health checking: the ``grpc.health.v1.Health`` service, for any ConnectASGIApplication.

The protocol is gRPC's (https://github.com/grpc/grpc/blob/master/doc/health-checking.md), so
load balancers, Kubernetes' gRPC probes, ``grpc_health_probe``, ``grpcurl`` and grpcio's
health stubs can all ask; as with every connectrpc service, they may ask over Connect,
gRPC or gRPC-Web. A ``HealthChecker`` holds a status per service name, the empty name
standing for the whole server, and ``health_handlers`` serves it:

    checker = HealthChecker()  # the server as a whole ("") is SERVING
    checker.set_status("connectrpc.eliza.v1.ElizaService", ServingStatus.SERVING)
    app = ConnectASGIApplication([*eliza_app.handlers, *health_handlers(checker)])

``Check`` answers the status of one service, or ``not_found`` if it has none. ``Watch``
sends the current status (``SERVICE_UNKNOWN`` if there is none) and then each change, until
the client goes away or ``checker.shutdown()`` ends it. ``List`` answers every status at
once (gRPC caps it at 100 services: past that it fails with ``resource_exhausted``).
``Check`` and ``List`` have no side effects, so Connect clients, and plain HTTP probes, may
call them with GET, e.g.
``GET /grpc.health.v1.Health/Check?encoding=json&message=%7B%7D`` (``message`` is the
URL-encoded JSON request, ``{}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import AsyncGenerator, AsyncIterator, Mapping

from connectrpc._core.code import Code
from connectrpc._core.error import ConnectError
from connectrpc._proto.grpc.health.v1.health_pb2 import (
    HealthCheckRequest,
    HealthCheckResponse,
    HealthListRequest,
    HealthListResponse,
)
from connectrpc._server.context import RequestContext
from connectrpc._server.handler import Handler, server_stream_handler, unary_handler
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType

__all__ = [
    "HealthCheckRequest",
    "HealthCheckResponse",
    "HealthChecker",
    "HealthListRequest",
    "HealthListResponse",
    "HealthMethods",
    "ServingStatus",
    "health_handlers",
]

_SERVICE = "grpc.health.v1.Health"
_LIST_MAX_SERVICES = 100  # the most statuses List answers: gRPC's contract fails larger lists


class ServingStatus(enum.IntEnum):
    """``grpc.health.v1.HealthCheckResponse.ServingStatus``, valued as on the wire."""

    UNKNOWN = 0
    SERVING = 1
    NOT_SERVING = 2
    SERVICE_UNKNOWN = 3
    """Only sent by ``Watch``, for a service without a status; never set."""


class HealthMethods:
    """The methods of ``grpc.health.v1.Health``, for clients (``AsyncConnectClient``)."""

    CHECK: MethodInfo[HealthCheckRequest, HealthCheckResponse] = MethodInfo(
        _SERVICE,
        "Check",
        HealthCheckRequest,
        HealthCheckResponse,
        StreamType.UNARY,
        IdempotencyLevel.NO_SIDE_EFFECTS,
    )
    LIST: MethodInfo[HealthListRequest, HealthListResponse] = MethodInfo(
        _SERVICE,
        "List",
        HealthListRequest,
        HealthListResponse,
        StreamType.UNARY,
        IdempotencyLevel.NO_SIDE_EFFECTS,
    )
    WATCH: MethodInfo[HealthCheckRequest, HealthCheckResponse] = MethodInfo(
        _SERVICE, "Watch", HealthCheckRequest, HealthCheckResponse, StreamType.SERVER_STREAM
    )


class _Watcher:
    """One ``watch``: the newest status for it, an event set when that changes, and whether
    the watch ends once that status is seen (the checker shut down).

    Only the newest status is kept, so a watcher that reads slowly costs one slot, however
    fast statuses change; it may miss a status that was replaced before it looked, but it
    always ends up seeing the current one.
    """

    __slots__ = ("changed", "final", "latest")

    def __init__(self, latest: ServingStatus, final: bool) -> None:
        self.latest = latest
        self.final = final
        self.changed = asyncio.Event()

    def notify(self, status: ServingStatus) -> None:
        self.latest = status
        self.changed.set()

    def finish(self) -> None:
        self.final = True
        self.changed.set()


class HealthChecker:
    """The serving status of each service, as ``grpc.health.v1.Health`` reports it.

    ``statuses`` are the initial ones, by service name; by default the server as a whole
    (``""``) is ``SERVING`` and nothing else is known, as in grpc-go. Set the status of each
    service you serve (by its fully qualified name) if clients ask for it by name.

    Use it from the event loop that serves the application: its methods are not
    thread-safe. From another thread, go through the loop, e.g.
    ``loop.call_soon_threadsafe(checker.set_status, name, ServingStatus.NOT_SERVING)``.
    """

    def __init__(self, statuses: Mapping[str, ServingStatus] | None = None) -> None:
        self._statuses: dict[str, ServingStatus] = {}
        self._watchers: dict[str, set[_Watcher]] = {}
        self._shut_down = False
        initial = {"": ServingStatus.SERVING} if statuses is None else statuses
        for service, status in initial.items():
            self.set_status(service, status)

    def set_status(self, service: str, status: ServingStatus) -> None:
        """Set the status of ``service`` (``""``: the whole server); watchers see it.

        Ignored after ``shutdown()`` until ``resume()``, so that a service that becomes
        ready during shutdown does not announce itself to clients that must go.
        """
        status = ServingStatus(status)
        if status is ServingStatus.SERVICE_UNKNOWN:
            raise ValueError("SERVICE_UNKNOWN is only sent by Watch; use clear_status()")
        if self._shut_down:
            return
        self._update(service, status)

    def clear_status(self, service: str) -> None:
        """Forget the status of ``service``: ``Check`` answers ``not_found`` and watchers
        see ``SERVICE_UNKNOWN``."""
        if self._statuses.pop(service, None) is not None:
            self._notify(service, ServingStatus.SERVICE_UNKNOWN)

    def status(self, service: str) -> ServingStatus | None:
        """The status of ``service``, or ``None`` if it has none."""
        return self._statuses.get(service)

    def statuses(self) -> dict[str, ServingStatus]:
        """A copy of every known status, by service name."""
        return dict(self._statuses)

    def shutdown(self) -> None:
        """Set every status to ``NOT_SERVING`` and ignore ``set_status`` until ``resume()``.

        Call it when the server starts to drain (on SIGTERM, say) so that health-checking
        clients and load balancers move away before the connections close. Watches end
        (with OK) once they have sent the final status, and new ones end after the first:
        an open Watch would otherwise hold the server's graceful shutdown until its timeout,
        and the protocol has clients retry an ended Watch, elsewhere if need be.
        """
        self._shut_down = True
        for service in self._statuses:
            self._update(service, ServingStatus.NOT_SERVING)
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.finish()

    def resume(self) -> None:
        """Undo ``shutdown()``: every known status becomes ``SERVING`` and Watches stay open
        again (those ended by the shutdown stay ended)."""
        self._shut_down = False
        for service in self._statuses:
            self._update(service, ServingStatus.SERVING)

    async def watch(self, service: str) -> AsyncGenerator[ServingStatus, None]:
        """The status of ``service`` now (``SERVICE_UNKNOWN`` if none), then each change.

        Runs until the consumer stops, or after the last status once the checker is shut
        down; close it (``contextlib.aclosing``) to unregister at once. A consumer that
        falls behind skips to the newest status.
        """
        current = self._statuses.get(service, ServingStatus.SERVICE_UNKNOWN)
        watcher = _Watcher(current, final=self._shut_down)
        self._watchers.setdefault(service, set()).add(watcher)
        try:
            last: ServingStatus | None = None
            while True:
                status = watcher.latest
                if status is not last:
                    last = status
                    yield status
                elif watcher.final:
                    return
                else:
                    watcher.changed.clear()
                    await watcher.changed.wait()
        finally:
            watchers = self._watchers.get(service)
            if watchers is not None:
                watchers.discard(watcher)
                if not watchers:
                    del self._watchers[service]

    def _update(self, service: str, status: ServingStatus) -> None:
        if self._statuses.get(service) is status:
            return
        self._statuses[service] = status
        self._notify(service, status)

    def _notify(self, service: str, status: ServingStatus) -> None:
        for watcher in self._watchers.get(service, ()):
            watcher.notify(status)


def health_handlers(checker: HealthChecker) -> list[Handler]:
    """Handlers serving ``grpc.health.v1.Health`` from ``checker``: give them, with your
    services' handlers, to ``ConnectASGIApplication``."""

    async def check(request: HealthCheckRequest, ctx: RequestContext) -> HealthCheckResponse:
        status = checker.status(request.service)
        if status is None:
            raise ConnectError(Code.NOT_FOUND, f"unknown service {request.service!r}")
        return HealthCheckResponse(status=status.name)

    async def list_(request: HealthListRequest, ctx: RequestContext) -> HealthListResponse:
        statuses = checker.statuses()
        if len(statuses) > _LIST_MAX_SERVICES:
            raise ConnectError(
                Code.RESOURCE_EXHAUSTED,
                f"{len(statuses)} services have a status, more than List's limit of "
                f"{_LIST_MAX_SERVICES}",
            )
        return HealthListResponse(
            statuses={
                name: HealthCheckResponse(status=status.name) for name, status in statuses.items()
            }
        )

    async def watch(
        request: HealthCheckRequest, ctx: RequestContext
    ) -> AsyncIterator[HealthCheckResponse]:
        # Closing the updates explicitly unregisters the watcher as soon as this handler
        # ends (the client went away, or its deadline passed), not when it is collected.
        async with contextlib.aclosing(checker.watch(request.service)) as updates:
            async for status in updates:
                yield HealthCheckResponse(status=status.name)

    return [
        unary_handler(HealthMethods.CHECK, check),
        unary_handler(HealthMethods.LIST, list_),
        server_stream_handler(HealthMethods.WATCH, watch),
    ]
