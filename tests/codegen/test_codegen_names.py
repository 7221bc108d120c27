"""Unit tests for the naming helpers of the code generator."""

from __future__ import annotations

import pytest

from protoc_plugin import _names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Say", "say"),
        ("SayHello", "say_hello"),
        ("sayHello", "say_hello"),
        ("Say_Hello", "say_hello"),
        ("say_hello", "say_hello"),
        ("HTTPRequest", "http_request"),
        ("GetHTTP", "get_http"),
        ("GetV2", "get_v2"),
        ("V2Get", "v2_get"),
        ("Get2fa", "get2fa"),
        ("ABTest", "ab_test"),
        ("A", "a"),
        ("_Private", "private"),
        ("__init__", "init__"),
        ("_", "rpc"),
        ("__", "rpc"),
        ("AsyncIterator", "async_iterator"),
    ],
)
def test_snake_case(name: str, expected: str) -> None:
    assert _names.snake_case(name) == expected


def test_upper_snake_case() -> None:
    assert _names.upper_snake_case("SayHello") == "SAY_HELLO"
    assert _names.upper_snake_case("HTTPRequest") == "HTTP_REQUEST"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("import", True),
        ("None", True),
        ("async", True),
        ("match", True),
        ("case", True),
        ("type", True),
        ("_", True),
        ("list", False),
        ("say", False),
    ],
)
def test_is_python_keyword(name: str, expected: bool) -> None:
    assert _names.is_python_keyword(name) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ElizaService", True),
        ("_Hidden", True),
        ("HTTP", True),
        ("None_", False),
        ("aiohttp", False),
        ("Async_Client", False),
    ],
)
def test_is_cap_words(name: str, expected: bool) -> None:
    assert _names.is_cap_words(name) is expected


@pytest.mark.parametrize(
    ("proto", "module", "alias", "output"),
    [
        (
            "eliza/v1/eliza.proto",
            "eliza.v1.eliza_pb2",
            "eliza_dot_v1_dot_eliza__pb2",
            "eliza/v1/eliza_connect.py",
        ),
        ("nopackage.proto", "nopackage_pb2", "nopackage__pb2", "nopackage_connect.py"),
        (
            "google/protobuf/empty.proto",
            "google.protobuf.empty_pb2",
            "google_dot_protobuf_dot_empty__pb2",
            "google/protobuf/empty_connect.py",
        ),
        (
            "my-api/v1/long-file_name.proto",
            "my_api.v1.long_file_name_pb2",
            "my__api_dot_v1_dot_long__file__name__pb2",
            "my_api/v1/long_file_name_connect.py",
        ),
    ],
)
def test_module_names(proto: str, module: str, alias: str, output: str) -> None:
    assert _names.pb2_module_name(proto) == module
    assert _names.pb2_module_alias(module) == alias
    assert _names.connect_output_path(proto) == output


def test_python_builtin_names() -> None:
    builtins = _names.python_builtin_names()
    assert {"str", "list", "Exception", "super"} <= builtins
    assert not any(name.startswith("_") for name in builtins)


def test_scope_escapes_keywords_and_reserved_names() -> None:
    scope = _names.NameScope(reserved={"connectrpc"})
    assert scope.claim("import") == "import_"
    assert scope.claim("connectrpc") == "connectrpc_"
    assert scope.claim("say") == "say"


def test_scope_disambiguates_collisions_deterministically() -> None:
    scope = _names.NameScope()
    assert scope.claim("say_hello") == "say_hello"
    assert scope.claim("say_hello") == "say_hello_"
    assert scope.claim("say_hello") == "say_hello__"
    # An escaped name may itself collide with a later name that ends in "_".
    assert scope.claim("import") == "import_"
    assert scope.claim("import_") == "import__"


def test_scope_claims_derived_names_together() -> None:
    scope = _names.NameScope()

    def with_call(base: str) -> list[str]:
        return [base, f"call_{base}"]

    assert scope.claim("say", with_call) == "say"
    # "call_say" is taken by the call_ form of "say": both names move together.
    assert scope.claim("call_say", with_call) == "call_say_"
    assert not scope.is_free("call_call_say_")
    assert scope.is_free("call_call_say")
