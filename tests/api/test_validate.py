"""protovalidate request validation (``connectrpc.validate``) over the in-memory transport.

The test schema, ``proto/validate_test/v1/user.proto``, is compiled when the tests start:
protoc gets the ``buf/validate/validate.proto`` descriptor that protovalidate embeds (the
package ships no ``.proto`` source), and the result is loaded into a private descriptor pool.
So no generated code is checked in, and nothing is added to protobuf's default pool.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import protovalidate
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message

from connectrpc.client import AsyncConnectClient, ClientOptions
from connectrpc.errors import Code, ConnectError
from connectrpc.method import MethodInfo, StreamType
from connectrpc.server import (
    ConnectASGIApplication,
    RequestContext,
    ServerOptions,
    bidi_stream_handler,
    client_stream_handler,
    unary_handler,
)
from connectrpc.testing import ASGITransport
from connectrpc.validate import ValidationInterceptor, violations_of

PROTO_ROOT = Path(__file__).parent / "proto"
PROTO_FILE = "validate_test/v1/user.proto"
PACKAGE = "validate_test.v1"
SERVICE = f"{PACKAGE}.UserService"


@dataclass(frozen=True)
class Schema:
    """The test messages, and the RPCs over them."""

    user: type[Message]
    team: type[Message]
    create: MethodInfo[Any, Any]
    create_team: MethodInfo[Any, Any]
    bulk_create: MethodInfo[Any, Any]
    sync: MethodInfo[Any, Any]
    uncompilable: MethodInfo[Any, Any]
    unevaluable: MethodInfo[Any, Any]


def _validate_proto_set() -> descriptor_pb2.FileDescriptorSet:
    """``buf/validate/validate.proto`` and its imports, from protovalidate's embedded copy."""
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    def add(desc: Any) -> None:
        if desc.name in files:
            return
        for dependency in desc.dependencies:
            add(dependency)
        files[desc.name] = descriptor_pb2.FileDescriptorProto.FromString(desc.proto.to_binary())

    add(protovalidate.ViolationsPb.desc().file)
    return descriptor_pb2.FileDescriptorSet(file=files.values())


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Schema:
    tmp = tmp_path_factory.mktemp("validate_proto")
    imports, compiled = tmp / "validate.binpb", tmp / "user.binpb"
    imports.write_bytes(_validate_proto_set().SerializeToString())
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--descriptor_set_in={imports}",
            f"-I{PROTO_ROOT}",
            "--include_imports",
            f"--descriptor_set_out={compiled}",
            PROTO_FILE,
        ],
        check=True,
    )
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_pb2.FileDescriptorSet.FromString(compiled.read_bytes()).file:
        pool.Add(file)

    def message(name: str) -> type[Message]:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))

    user, response = message("CreateUserRequest"), message("CreateUserResponse")
    return Schema(
        user=user,
        team=message("CreateTeamRequest"),
        create=MethodInfo(SERVICE, "Create", user, response, StreamType.UNARY),
        create_team=MethodInfo(
            SERVICE, "CreateTeam", message("CreateTeamRequest"), response, StreamType.UNARY
        ),
        bulk_create=MethodInfo(SERVICE, "BulkCreate", user, response, StreamType.CLIENT_STREAM),
        sync=MethodInfo(SERVICE, "Sync", user, response, StreamType.BIDI_STREAM),
        uncompilable=MethodInfo(
            SERVICE, "Uncompilable", message("UncompilableRequest"), response, StreamType.UNARY
        ),
        unevaluable=MethodInfo(
            SERVICE, "Unevaluable", message("UnevaluableRequest"), response, StreamType.UNARY
        ),
    )


def make(message_type: type[Message], **fields: Any) -> Any:
    """A message of a runtime-built type, from its fields in JSON form."""
    return json_format.ParseDict(fields, message_type())


class Users:
    """The handlers. Responses carry ids that are not UUIDs, against CreateUserResponse's
    rule: responses are not validated."""

    def __init__(self, schema: Schema) -> None:
        self.response = schema.create.output
        self.calls = 0
        self.seen: list[str] = []

    def answer(self, text: str) -> Any:
        return make(self.response, id=text)

    async def create(self, request: Any, ctx: RequestContext) -> Any:
        self.calls += 1
        email = getattr(request, "email", "")  # also serves the other request types
        self.seen.append(email)
        return self.answer(f"user:{email}")

    async def bulk_create(self, requests: AsyncIterator[Any], ctx: RequestContext) -> Any:
        self.calls += 1
        async for request in requests:
            self.seen.append(request.email)
        return self.answer(",".join(self.seen))

    async def sync(
        self, requests: AsyncIterator[Any], ctx: RequestContext
    ) -> AsyncIterator[Message]:
        self.calls += 1
        async for request in requests:
            self.seen.append(request.email)
            yield self.answer(f"user:{request.email}")


class CountRequests:
    """ASGI middleware counting the HTTP requests that reach the app."""

    def __init__(self, app: ConnectASGIApplication) -> None:
        self.app = app
        self.count = 0

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "http":
            self.count += 1
        await self.app(scope, receive, send)


@dataclass
class Setup:
    client: AsyncConnectClient
    users: Users
    http: CountRequests


def setup(
    schema: Schema,
    protocol: str = "connect",
    *,
    server: ValidationInterceptor | None = None,
    client: ValidationInterceptor | None = None,
    codec: str = "proto",
) -> Setup:
    users = Users(schema)
    app = ConnectASGIApplication(
        [
            unary_handler(schema.create, users.create),
            unary_handler(schema.create_team, users.create),
            unary_handler(schema.uncompilable, users.create),
            unary_handler(schema.unevaluable, users.create),
            client_stream_handler(schema.bulk_create, users.bulk_create),
            bidi_stream_handler(schema.sync, users.sync),
        ],
        options=ServerOptions(interceptors=[server] if server else []),
    )
    http = CountRequests(app)
    options = ClientOptions(protocol=protocol, codec=codec, interceptors=[client] if client else [])
    return Setup(
        AsyncConnectClient("http://test", ASGITransport(http), options=options),
        users,
        http,
    )


@pytest.fixture(params=["connect", "grpc-web", "grpc"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def field_paths(error: ConnectError) -> list[str]:
    violations = violations_of(error)
    assert violations is not None, error
    return [
        ".".join(e.field_name for e in v.field.elements) if v.field else ""
        for v in violations.violations
    ]


@pytest.mark.parametrize("codec", ["proto", "json"])
async def test_valid_requests_reach_the_handler(schema: Schema, protocol: str, codec: str) -> None:
    s = setup(schema, protocol, server=ValidationInterceptor(), codec=codec)
    response = await s.client.unary(schema.create, make(schema.user, email="ada@example.com"))
    assert response.id == "user:ada@example.com"  # not a UUID: responses are not validated
    assert s.users.calls == 1


async def test_an_invalid_request_fails_with_violations(schema: Schema, protocol: str) -> None:
    s = setup(schema, protocol, server=ValidationInterceptor())
    out = await s.client.call_unary(schema.create, make(schema.user, email="nope", age=200))
    error = out.error()
    assert error is not None
    assert error.code is Code.INVALID_ARGUMENT
    assert error.wire
    assert error.message == (
        "validation error: email: must be a valid email address [string.email]; "
        "age: must be less than or equal to 150 [uint32.lte]"
    )
    assert [d.type_name for d in error.details] == ["buf.validate.Violations"]
    violations = violations_of(error)
    assert violations is not None
    assert [v.rule_id for v in violations.violations] == ["string.email", "uint32.lte"]
    assert field_paths(error) == ["email", "age"]
    assert s.users.calls == 0


async def test_a_client_stream_fails_at_its_first_invalid_message(
    schema: Schema, protocol: str
) -> None:
    s = setup(schema, protocol, server=ValidationInterceptor())
    requests = [
        make(schema.user, email="ada@example.com"),
        make(schema.user, email="not an email"),
        make(schema.user, email="grace@example.com"),
    ]
    with pytest.raises(ConnectError) as caught:
        await s.client.client_stream(schema.bulk_create, requests)
    assert caught.value.code is Code.INVALID_ARGUMENT
    assert field_paths(caught.value) == ["email"]
    assert s.users.seen == ["ada@example.com"]


async def test_a_bidi_stream_answers_until_its_first_invalid_message(
    schema: Schema, protocol: str
) -> None:
    s = setup(schema, protocol, server=ValidationInterceptor())
    requests = [make(schema.user, email="ada@example.com"), make(schema.user, age=999)]
    async with await s.client.call_bidi_stream(schema.sync, requests) as output:
        answered = [response.id async for response in output]
    error = output.error()
    assert error is not None
    assert error.code is Code.INVALID_ARGUMENT
    assert field_paths(error) == ["email", "age"]  # empty email, age over 150
    assert answered == ["user:ada@example.com"]


async def test_a_message_rule_has_no_field_path(schema: Schema, protocol: str) -> None:
    s = setup(schema, protocol, server=ValidationInterceptor())
    request = make(schema.user, email="ada@example.com", first_name="Ada")
    error = (await s.client.call_unary(schema.create, request)).error()
    assert error is not None
    assert error.code is Code.INVALID_ARGUMENT
    assert error.message == (
        "validation error: last_name must be set when first_name is [last_name_with_first_name]"
    )
    violations = violations_of(error)
    assert violations is not None
    (violation,) = violations.violations
    assert violation.field is None
    assert violation.rule_id == "last_name_with_first_name"


async def test_nested_field_paths_name_indexes_and_keys(schema: Schema) -> None:
    s = setup(schema, server=ValidationInterceptor())
    team = make(
        schema.team,
        members=[{"email": "ada@example.com"}, {"email": "grace@example.com", "age": 151}],
        labels={'say "hi"': ""},
    )
    error = (await s.client.call_unary(schema.create_team, team)).error()
    assert error is not None
    assert error.message == (
        "validation error: members[1].age: must be less than or equal to 150 [uint32.lte]; "
        'labels["say \\"hi\\""]: must be at least 1 characters [string.min_len]'
    )


async def test_long_lists_of_violations_are_cut_in_the_message(schema: Schema) -> None:
    s = setup(schema, server=ValidationInterceptor())
    team = make(schema.team, members=[{"email": f"{i}@example.com", "age": 200} for i in range(13)])
    error = (await s.client.call_unary(schema.create_team, team)).error()
    assert error is not None
    assert error.message.count("[uint32.lte]") == 10
    assert error.message.endswith("; and 3 more")
    violations = violations_of(error)
    assert violations is not None
    assert len(violations.violations) == 13


async def test_fail_fast_and_a_given_validator(schema: Schema) -> None:
    interceptor = ValidationInterceptor(protovalidate.Validator(), fail_fast=True)
    s = setup(schema, server=interceptor)
    error = (await s.client.call_unary(schema.create, make(schema.user, age=200))).error()
    assert error is not None
    assert field_paths(error) == ["email"]


async def test_client_side_validation_sends_nothing(schema: Schema, protocol: str) -> None:
    s = setup(schema, protocol, client=ValidationInterceptor())
    error = (await s.client.call_unary(schema.create, make(schema.user, email="nope"))).error()
    assert error is not None
    assert error.code is Code.INVALID_ARGUMENT
    assert not error.wire
    assert field_paths(error) == ["email"]
    assert s.http.count == 0
    assert s.users.calls == 0

    valid = make(schema.user, email="ada@example.com")
    assert await s.client.unary(schema.create, valid) is not None
    assert s.http.count == 1


async def test_client_side_validation_stops_a_client_stream(schema: Schema, protocol: str) -> None:
    s = setup(schema, protocol, client=ValidationInterceptor())
    requests = [make(schema.user, email="ada@example.com"), make(schema.user, email="nope")]
    out = await s.client.call_client_stream(schema.bulk_create, requests)
    error = out.error()
    assert error is not None
    assert error.code is Code.INVALID_ARGUMENT
    assert field_paths(error) == ["email"]
    assert "nope" not in s.users.seen


@pytest.mark.parametrize(
    ("method", "fields"),
    [("uncompilable", {}), ("unevaluable", {"divisor": 0})],
)
async def test_rules_that_cannot_run_fail_with_internal(
    schema: Schema, method: str, fields: dict[str, Any]
) -> None:
    info: MethodInfo[Any, Any] = getattr(schema, method)
    s = setup(schema, server=ValidationInterceptor())
    error = (await s.client.call_unary(info, make(info.input, **fields))).error()
    assert error is not None
    assert error.code is Code.INTERNAL
    assert error.message.startswith(f"cannot validate {info.input.DESCRIPTOR.full_name}: ")
    assert violations_of(error) is None
    assert s.users.calls == 0


def test_without_protovalidate_the_import_error_names_the_extra() -> None:
    script = (
        "import sys\n"
        "sys.modules['protovalidate'] = None\n"
        "try:\n"
        "    import connectrpc.validate\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert "pip install 'connect-python[validate]'" in result.stdout
