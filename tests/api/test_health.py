"""gRPC health checking over the in-memory transport: Check, List and Watch, served from a
``HealthChecker`` next to another service in one application."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest

from connectrpc.client import AsyncConnectClient, ClientOptions
from connectrpc.errors import Code, ConnectError
from connectrpc.health import (
    HealthChecker,
    HealthCheckRequest,
    HealthCheckResponse,
    HealthListRequest,
    HealthMethods,
    ServingStatus,
    health_handlers,
)
from connectrpc.server import ConnectASGIApplication
from connectrpc.streams import StreamOutput
from connectrpc.testing import ASGITransport

from ._service import ECHO, EchoService, S, make_app

ECHO_SERVICE = ECHO.service
STEP = 5.0  # seconds any single step may take before the test fails instead of hanging


@pytest.fixture(params=["connect", "grpc-web", "grpc"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def serve(checker: HealthChecker) -> ConnectASGIApplication:
    """The echo service and health in one app, the way users combine services."""
    echo = make_app(EchoService())
    return ConnectASGIApplication([*echo.handlers, *health_handlers(checker)])


def client_for(app: ConnectASGIApplication, protocol: str = "connect") -> AsyncConnectClient:
    return AsyncConnectClient(
        "http://test", ASGITransport(app), options=ClientOptions(protocol=protocol)
    )


async def check(client: AsyncConnectClient, service: str) -> int:
    response = await client.unary(
        HealthMethods.CHECK, HealthCheckRequest(service=service), timeout_seconds=STEP
    )
    return response.status


async def next_status(stream: StreamOutput[HealthCheckResponse]) -> int:
    return (await asyncio.wait_for(stream.__anext__(), STEP)).status


def test_serving_status_is_the_wire_enum() -> None:
    assert {s.name: s.value for s in ServingStatus} == dict(
        HealthCheckResponse.ServingStatus.items()
    )


def test_handlers_property_combines_apps() -> None:
    echo = make_app(EchoService())
    health = health_handlers(HealthChecker())
    app = ConnectASGIApplication([*echo.handlers, *health])
    assert app.handlers == (*echo.handlers, *health)
    assert "/grpc.health.v1.Health/Check" in app.procedures
    with pytest.raises(ValueError, match="two handlers"):
        ConnectASGIApplication([*app.handlers, *health])


async def test_check(protocol: str) -> None:
    checker = HealthChecker()
    client = client_for(serve(checker), protocol)
    assert await check(client, "") == ServingStatus.SERVING
    checker.set_status(ECHO_SERVICE, ServingStatus.SERVING)
    assert await check(client, ECHO_SERVICE) == ServingStatus.SERVING
    checker.set_status(ECHO_SERVICE, ServingStatus.NOT_SERVING)
    assert await check(client, ECHO_SERVICE) == ServingStatus.NOT_SERVING
    # The other service in the same app is unaffected by health's presence.
    assert await client.unary(ECHO, S(value="still here")) == S(value="still here")


async def test_check_unknown_service_is_not_found(protocol: str) -> None:
    checker = HealthChecker()
    client = client_for(serve(checker), protocol)
    with pytest.raises(ConnectError) as info:
        await check(client, "no.such.Service")
    assert info.value.code is Code.NOT_FOUND
    assert "no.such.Service" in info.value.message
    checker.set_status("no.such.Service", ServingStatus.SERVING)
    assert await check(client, "no.such.Service") == ServingStatus.SERVING
    checker.clear_status("no.such.Service")
    with pytest.raises(ConnectError) as info:
        await check(client, "no.such.Service")
    assert info.value.code is Code.NOT_FOUND


async def test_no_overall_status_when_given_none() -> None:
    client = client_for(serve(HealthChecker({})))
    with pytest.raises(ConnectError) as info:
        await check(client, "")
    assert info.value.code is Code.NOT_FOUND


async def test_check_over_get_and_json() -> None:
    """Check has no side effects, so Connect clients (and HTTP probes) may GET it."""
    app = serve(HealthChecker())
    client = AsyncConnectClient(
        "http://test", ASGITransport(app), options=ClientOptions(codec="json")
    )
    output = await client.call_unary(HealthMethods.CHECK, HealthCheckRequest(), use_get=True)
    assert output.error() is None
    message = output.message()
    assert message is not None
    assert ServingStatus(message.status) is ServingStatus.SERVING


async def test_list(protocol: str) -> None:
    checker = HealthChecker()
    checker.set_status(ECHO_SERVICE, ServingStatus.NOT_SERVING)
    client = client_for(serve(checker), protocol)
    response = await client.unary(HealthMethods.LIST, HealthListRequest())
    assert {name: ServingStatus(r.status) for name, r in response.statuses.items()} == {
        "": ServingStatus.SERVING,
        ECHO_SERVICE: ServingStatus.NOT_SERVING,
    }


async def test_list_past_the_limit_is_resource_exhausted() -> None:
    checker = HealthChecker({f"s{i}": ServingStatus.SERVING for i in range(101)})
    with pytest.raises(ConnectError) as info:
        await client_for(serve(checker)).unary(HealthMethods.LIST, HealthListRequest())
    assert info.value.code is Code.RESOURCE_EXHAUSTED


async def test_watch_sees_each_change(protocol: str) -> None:
    checker = HealthChecker()
    checker.set_status(ECHO_SERVICE, ServingStatus.SERVING)
    client = client_for(serve(checker), protocol)
    output = await client.call_server_stream(
        HealthMethods.WATCH, HealthCheckRequest(service=ECHO_SERVICE), timeout_seconds=30
    )
    async with output as stream:
        assert await next_status(stream) == ServingStatus.SERVING
        checker.set_status(ECHO_SERVICE, ServingStatus.NOT_SERVING)
        assert await next_status(stream) == ServingStatus.NOT_SERVING
        checker.set_status(ECHO_SERVICE, ServingStatus.NOT_SERVING)  # no change: nothing sent
        checker.clear_status(ECHO_SERVICE)
        assert await next_status(stream) == ServingStatus.SERVICE_UNKNOWN
        checker.set_status(ECHO_SERVICE, ServingStatus.SERVING)
        assert await next_status(stream) == ServingStatus.SERVING


async def test_watch_unknown_service_waits_for_it() -> None:
    checker = HealthChecker()
    client = client_for(serve(checker))
    output = await client.call_server_stream(
        HealthMethods.WATCH, HealthCheckRequest(service="later.Service"), timeout_seconds=30
    )
    async with output as stream:
        # Unknown is not an error for Watch: the call stays open.
        assert await next_status(stream) == ServingStatus.SERVICE_UNKNOWN
        checker.set_status("later.Service", ServingStatus.SERVING)
        assert await next_status(stream) == ServingStatus.SERVING


async def test_watch_skips_to_the_newest_status() -> None:
    """A watcher keeps one slot, not a queue: a burst of changes costs nothing and the
    client sees where it ended."""
    checker = HealthChecker()
    client = client_for(serve(checker))
    output = await client.call_server_stream(
        HealthMethods.WATCH, HealthCheckRequest(service=""), timeout_seconds=30
    )
    async with output as stream:
        assert await next_status(stream) == ServingStatus.SERVING
        for _ in range(1000):
            checker.set_status("", ServingStatus.NOT_SERVING)
            checker.set_status("", ServingStatus.SERVING)
        checker.set_status("", ServingStatus.NOT_SERVING)
        assert await next_status(stream) == ServingStatus.NOT_SERVING


async def _settled(checker: HealthChecker) -> None:
    """Wait until the checker has no watchers left (the server cleans up in its own task)."""
    for _ in range(int(STEP / 0.01)):
        if not checker._watchers:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"watchers left behind: {checker._watchers}")


async def test_watch_leaves_nothing_behind_when_the_client_goes() -> None:
    checker = HealthChecker()
    client = client_for(serve(checker))
    before = asyncio.all_tasks()
    for _ in range(20):
        output = await client.call_server_stream(
            HealthMethods.WATCH, HealthCheckRequest(service=""), timeout_seconds=30
        )
        async with output as stream:
            assert await next_status(stream) == ServingStatus.SERVING
        # Leaving the block closed the stream early: the client went away.
    await _settled(checker)
    assert checker._watchers == {}
    for _ in range(100):
        if asyncio.all_tasks() <= before:
            break
        await asyncio.sleep(0.01)
    assert asyncio.all_tasks() <= before
    checker.set_status("", ServingStatus.NOT_SERVING)  # nobody left to notify


async def test_watch_ends_at_the_deadline() -> None:
    checker = HealthChecker()
    client = client_for(serve(checker))
    output = await client.call_server_stream(
        HealthMethods.WATCH, HealthCheckRequest(), timeout_seconds=0.2
    )
    async with output as stream:
        statuses = [ServingStatus(response.status) async for response in stream]
    assert statuses == [ServingStatus.SERVING]
    error = output.error()
    assert error is not None
    assert error.code is Code.DEADLINE_EXCEEDED
    await _settled(checker)


async def test_watch_in_process() -> None:
    checker = HealthChecker()
    updates = checker.watch("svc")
    assert await updates.__anext__() is ServingStatus.SERVICE_UNKNOWN
    checker.set_status("svc", ServingStatus.SERVING)
    assert await asyncio.wait_for(updates.__anext__(), STEP) is ServingStatus.SERVING
    await updates.aclose()
    assert checker._watchers == {}


async def _rest(output: StreamOutput[HealthCheckResponse]) -> list[ServingStatus]:
    async def collect() -> list[ServingStatus]:
        return [ServingStatus(r.status) async for r in output]

    return await asyncio.wait_for(collect(), STEP)


async def test_shutdown_ends_watches_after_not_serving() -> None:
    """So that open watches do not hold the server's graceful shutdown: the protocol has
    clients retry an ended Watch."""
    checker = HealthChecker()
    checker.set_status(ECHO_SERVICE, ServingStatus.SERVING)
    client = client_for(serve(checker))
    request = HealthCheckRequest(service=ECHO_SERVICE)
    output = await client.call_server_stream(HealthMethods.WATCH, request, timeout_seconds=30)
    async with output as stream:
        assert await next_status(stream) == ServingStatus.SERVING
        checker.shutdown()
        assert await _rest(stream) == [ServingStatus.NOT_SERVING]
    assert output.error() is None
    await _settled(checker)

    # A watch that starts during the shutdown gets the status, then its end.
    output = await client.call_server_stream(HealthMethods.WATCH, request, timeout_seconds=30)
    async with output as stream:
        assert await _rest(stream) == [ServingStatus.NOT_SERVING]
    assert output.error() is None
    assert await check(client, "") == ServingStatus.NOT_SERVING
    checker.set_status(ECHO_SERVICE, ServingStatus.SERVING)  # ignored while shut down
    assert await check(client, ECHO_SERVICE) == ServingStatus.NOT_SERVING

    checker.resume()
    assert await check(client, "") == ServingStatus.SERVING
    output = await client.call_server_stream(HealthMethods.WATCH, request, timeout_seconds=30)
    async with output as stream:
        assert await next_status(stream) == ServingStatus.SERVING
        checker.set_status(ECHO_SERVICE, ServingStatus.NOT_SERVING)
        assert await next_status(stream) == ServingStatus.NOT_SERVING  # open again


def test_service_unknown_cannot_be_set() -> None:
    with pytest.raises(ValueError, match="clear_status"):
        HealthChecker().set_status("x", ServingStatus.SERVICE_UNKNOWN)


# grpcio-health-checking (not a dependency) registers grpc/health/v1/health.proto, with the
# same symbols and other contents, in protobuf's default pool. This stands in for it.
_CLASH = textwrap.dedent(
    """
    import asyncio
    from google.protobuf import descriptor_pb2, descriptor_pool

    def register_theirs():
        theirs = descriptor_pb2.FileDescriptorProto(
            name="grpc/health/v1/health.proto", package="grpc.health.v1", syntax="proto3"
        )
        theirs.options.java_package = "io.grpc.health.v1"
        theirs.message_type.add(name="HealthCheckRequest").field.add(
            name="service", number=1, type=9, label=1
        )
        descriptor_pool.Default().Add(theirs)

    if FIRST:
        register_theirs()
    from connectrpc.client import AsyncConnectClient
    from connectrpc.health import HealthChecker, HealthCheckRequest, HealthMethods
    from connectrpc.health import health_handlers
    from connectrpc.server import ConnectASGIApplication
    from connectrpc.testing import ASGITransport
    if not FIRST:
        register_theirs()

    async def main():
        app = ConnectASGIApplication(health_handlers(HealthChecker()))
        client = AsyncConnectClient("http://test", ASGITransport(app))
        response = await client.unary(HealthMethods.CHECK, HealthCheckRequest())
        print(response.status)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("first", [True, False], ids=["theirs_first", "ours_first"])
def test_no_clash_with_grpcio_health_in_the_default_pool(first: bool) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"FIRST = {first}\n{_CLASH}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(int(ServingStatus.SERVING))
