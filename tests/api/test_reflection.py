"""gRPC server reflection (v1 and v1alpha) over the in-memory transport.

The reflected service is described by two files built here, in a descriptor pool of their
own (as any non-default pool would be): ``svc.proto`` declares the service and extensions
and imports ``types.proto`` and wrappers; ``types.proto`` imports timestamp. So answers must
carry transitive dependencies, in order, each once per stream.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    timestamp_pb2,
    wrappers_pb2,
)
from google.protobuf.message import Message

from connectrpc._proto.grpc.reflection.v1 import reflection_pb2 as v1
from connectrpc._proto.grpc.reflection.v1alpha import reflection_pb2 as v1alpha
from connectrpc.client import AsyncConnectClient, ClientOptions
from connectrpc.errors import Code
from connectrpc.health import HealthChecker, health_handlers
from connectrpc.method import MethodInfo, StreamType
from connectrpc.reflection import ReflectionMethods, reflection_handlers
from connectrpc.server import ConnectASGIApplication, Handler, RequestContext, unary_handler
from connectrpc.testing import ASGITransport

from ._service import EchoService, make_app

PACKAGE = "connectrpc_test.reflection.v1"
SERVICE = f"{PACKAGE}.StampService"
TYPES = "connectrpc_test/reflection/v1/types.proto"
SVC = "connectrpc_test/reflection/v1/svc.proto"
TIMESTAMP = "google/protobuf/timestamp.proto"
WRAPPERS = "google/protobuf/wrappers.proto"
HEALTH = "grpc/health/v1/health.proto"
STEP = 5.0


def _files() -> tuple[descriptor_pb2.FileDescriptorProto, descriptor_pb2.FileDescriptorProto]:
    types = descriptor_pb2.FileDescriptorProto(
        name=TYPES, package=PACKAGE, syntax="proto2", dependency=[TIMESTAMP]
    )
    stamp = types.message_type.add(name="Stamp")
    stamp.field.add(
        name="at",
        number=1,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
        type_name=".google.protobuf.Timestamp",
    )
    stamp.nested_type.add(name="Inner")
    extendable = types.message_type.add(name="Extendable")
    extendable.extension_range.add(start=100, end=200)

    svc = descriptor_pb2.FileDescriptorProto(
        name=SVC, package=PACKAGE, syntax="proto2", dependency=[TYPES, WRAPPERS]
    )
    for name, number in (("note", 100), ("level", 101)):
        svc.extension.add(
            name=name,
            number=number,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
            type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
            extendee=f".{PACKAGE}.Extendable",
        )
    service = svc.service.add(name="StampService")
    service.method.add(name="Echo", input_type=f".{PACKAGE}.Stamp", output_type=f".{PACKAGE}.Stamp")
    return types, svc


POOL = descriptor_pool.DescriptorPool()
for _file in (timestamp_pb2.DESCRIPTOR, wrappers_pb2.DESCRIPTOR):
    POOL.AddSerializedFile(_file.serialized_pb)
for _proto in _files():
    POOL.Add(_proto)
Stamp = message_factory.GetMessageClass(POOL.FindMessageTypeByName(f"{PACKAGE}.Stamp"))
ECHO_STAMP: MethodInfo[Message, Message] = MethodInfo(
    SERVICE, "Echo", Stamp, Stamp, StreamType.UNARY
)


async def _echo(request: Message, ctx: RequestContext) -> Message:
    return request


def services() -> list[Handler]:
    """The stamp service, health, and a service without descriptors (the echo test one)."""
    return [
        unary_handler(ECHO_STAMP, _echo),
        *health_handlers(HealthChecker()),
        *make_app(EchoService()).handlers,
    ]


def make_client(protocol: str = "connect") -> AsyncConnectClient:
    handlers = services()
    app = ConnectASGIApplication([*handlers, *reflection_handlers(handlers)])
    return AsyncConnectClient(
        "http://test", ASGITransport(app), options=ClientOptions(protocol=protocol)
    )


@pytest.fixture(params=["v1", "v1alpha"])
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def ask(
    requests: list[v1.ServerReflectionRequest],
    version: str = "v1",
    protocol: str = "connect",
) -> list[v1.ServerReflectionResponse]:
    """Send the requests on one stream; the answers, as v1 messages."""
    client = make_client(protocol)
    if version == "v1":
        answers: list[Any] = [
            r
            async for r in client.bidi_stream(
                ReflectionMethods.SERVER_REFLECTION_INFO_V1, requests, timeout_seconds=STEP
            )
        ]
    else:
        alpha = [
            v1alpha.ServerReflectionRequest.FromString(r.SerializeToString()) for r in requests
        ]
        answers = [
            r
            async for r in client.bidi_stream(
                ReflectionMethods.SERVER_REFLECTION_INFO_V1ALPHA, alpha, timeout_seconds=STEP
            )
        ]
    return [v1.ServerReflectionResponse.FromString(a.SerializeToString()) for a in answers]


def names(response: v1.ServerReflectionResponse) -> list[str]:
    """The names of the files in a file_descriptor_response, in order."""
    assert response.WhichOneof("message_response") == "file_descriptor_response"
    return [
        descriptor_pb2.FileDescriptorProto.FromString(data).name
        for data in response.file_descriptor_response.file_descriptor_proto
    ]


def not_found(response: v1.ServerReflectionResponse) -> str:
    assert response.WhichOneof("message_response") == "error_response"
    assert response.error_response.error_code == 5  # gRPC's NOT_FOUND
    return response.error_response.error_message


@pytest.mark.parametrize("protocol", ["connect", "grpc-web"])
async def test_list_services(version: str, protocol: str) -> None:
    request = v1.ServerReflectionRequest(host="example.com", list_services="")
    [response] = await ask([request], version, protocol)
    assert response.valid_host == "example.com"
    assert response.original_request == request
    assert [s.name for s in response.list_services_response.service] == [
        SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "test.v1.EchoService",
    ]


async def test_file_by_symbol_with_dependencies_once_per_stream(version: str) -> None:
    responses = await ask(
        [
            v1.ServerReflectionRequest(file_containing_symbol=SERVICE),
            # Asked again: the file itself comes again, its dependencies do not.
            v1.ServerReflectionRequest(file_containing_symbol=SERVICE),
            v1.ServerReflectionRequest(file_by_filename=TYPES),
            v1.ServerReflectionRequest(file_by_filename=TIMESTAMP),
        ],
        version,
    )
    # Breadth first: the file, its imports in order, then theirs.
    assert [names(r) for r in responses] == [
        [SVC, TYPES, WRAPPERS, TIMESTAMP],
        [SVC],
        [TYPES],
        [TIMESTAMP],
    ]
    svc = descriptor_pb2.FileDescriptorProto.FromString(
        responses[0].file_descriptor_response.file_descriptor_proto[0]
    )
    assert svc.service[0].name == "StampService"
    assert list(svc.dependency) == [TYPES, WRAPPERS]


async def test_dependencies_are_sent_per_stream() -> None:
    """A new stream knows nothing of what an earlier one was sent."""
    for _ in range(2):
        [response] = await ask([v1.ServerReflectionRequest(file_by_filename=TYPES)])
        assert names(response) == [TYPES, TIMESTAMP]


@pytest.mark.parametrize(
    ("symbol", "file"),
    [
        (f"{SERVICE}.Echo", SVC),  # a method
        (f"{PACKAGE}.Stamp", TYPES),  # a message
        (f"{PACKAGE}.Stamp.Inner", TYPES),  # a nested message
        (f"{PACKAGE}.Stamp.at", TYPES),  # a field
        (f"{PACKAGE}.level", SVC),  # an extension
        ("grpc.health.v1.Health", HEALTH),  # a service in connectrpc's own pool
        ("grpc.health.v1.HealthCheckResponse.SERVING", HEALTH),  # an enum value
        ("grpc.reflection.v1alpha.ServerReflection", "grpc/reflection/v1alpha/reflection.proto"),
        ("google.protobuf.Timestamp", TIMESTAMP),
    ],
)
async def test_file_containing_symbol(symbol: str, file: str) -> None:
    [response] = await ask([v1.ServerReflectionRequest(file_containing_symbol=symbol)])
    assert names(response)[0] == file


async def test_unknown_names_are_not_found_and_the_stream_goes_on(version: str) -> None:
    responses = await ask(
        [
            v1.ServerReflectionRequest(file_containing_symbol="no.such.Symbol"),
            v1.ServerReflectionRequest(file_containing_symbol=f"{SERVICE}.NoSuchMethod"),
            v1.ServerReflectionRequest(file_containing_symbol=PACKAGE),  # a package is no symbol
            # Listed, but served from hand-written MethodInfo: no descriptor anywhere.
            v1.ServerReflectionRequest(file_containing_symbol="test.v1.EchoService"),
            v1.ServerReflectionRequest(file_by_filename="no/such/file.proto"),
            v1.ServerReflectionRequest(
                file_containing_extension=v1.ExtensionRequest(
                    containing_type=f"{PACKAGE}.Extendable", extension_number=150
                )
            ),
            v1.ServerReflectionRequest(all_extension_numbers_of_type="no.such.Type"),
            v1.ServerReflectionRequest(file_containing_symbol=SERVICE),
        ],
        version,
    )
    messages = [not_found(r) for r in responses[:-1]]
    assert "no.such.Symbol" in messages[0]
    assert "no/such/file.proto" in messages[4]
    assert "150" in messages[5]
    assert names(responses[-1])[0] == SVC
    assert responses[0].original_request.file_containing_symbol == "no.such.Symbol"


async def test_extensions(version: str) -> None:
    responses = await ask(
        [
            v1.ServerReflectionRequest(all_extension_numbers_of_type=f"{PACKAGE}.Extendable"),
            v1.ServerReflectionRequest(all_extension_numbers_of_type=f"{PACKAGE}.Stamp"),
            v1.ServerReflectionRequest(
                file_containing_extension=v1.ExtensionRequest(
                    containing_type=f"{PACKAGE}.Extendable", extension_number=101
                )
            ),
        ],
        version,
    )
    numbers = responses[0].all_extension_numbers_response
    assert numbers.base_type_name == f"{PACKAGE}.Extendable"
    assert sorted(numbers.extension_number) == [100, 101]
    assert list(responses[1].all_extension_numbers_response.extension_number) == []
    assert names(responses[2]) == [SVC, TYPES, WRAPPERS, TIMESTAMP]


async def test_a_request_that_asks_nothing_fails_the_stream() -> None:
    client = make_client()
    output = await client.call_bidi_stream(
        ReflectionMethods.SERVER_REFLECTION_INFO_V1,
        [v1.ServerReflectionRequest(list_services=""), v1.ServerReflectionRequest(host="h")],
        timeout_seconds=STEP,
    )
    async with output as stream:
        answers = [r async for r in stream]
    assert len(answers) == 1
    error = output.error()
    assert error is not None
    assert error.code is Code.INVALID_ARGUMENT


async def test_full_duplex_one_answer_per_question() -> None:
    """Tools wait for each answer before asking the next question."""
    questions: asyncio.Queue[v1.ServerReflectionRequest | None] = asyncio.Queue()

    async def requests() -> AsyncIterator[v1.ServerReflectionRequest]:
        while (request := await questions.get()) is not None:
            yield request

    client = make_client()
    # The call returns with the response head, which the server sends with its first answer.
    await questions.put(v1.ServerReflectionRequest(file_containing_symbol=SERVICE))
    output = await client.call_bidi_stream(
        ReflectionMethods.SERVER_REFLECTION_INFO_V1, requests(), timeout_seconds=STEP
    )
    async with output as stream:
        first = await asyncio.wait_for(stream.__anext__(), STEP)
        assert names(first)[0] == SVC
        await questions.put(v1.ServerReflectionRequest(file_by_filename=TYPES))
        second = await asyncio.wait_for(stream.__anext__(), STEP)
        assert names(second) == [TYPES]
        await questions.put(None)
        assert [r async for r in stream] == []
    assert output.error() is None


def test_generated_modules_are_up_to_date() -> None:
    """The checked-in _pb2 modules are what ``tools/gen_grpc_protos.py`` gives."""
    generate = _load_tool("gen_grpc_protos")
    assert generate.stale() == []


def _load_tool(name: str) -> Any:
    """A script of ``tools/`` (not a package), loaded as a module."""
    path = Path(__file__).resolve().parents[2] / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
