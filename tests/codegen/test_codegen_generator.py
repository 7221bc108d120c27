"""Unit tests for the generator's request handling: parameters, features and errors."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2

from protoc_plugin._generator import GeneratorError, Options, generate, parse_parameter

BuildRequest = Callable[..., plugin_pb2.CodeGeneratorRequest]
REPO_ROOT = Path(__file__).resolve().parents[2]


def simple_file(
    name: str = "svc.proto", package: str = "pkg", input_type: str = ".pkg.Msg"
) -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3")
    file.message_type.add(name="Msg")
    service = file.service.add(name="Svc")
    service.method.add(name="Call", input_type=input_type, output_type=".pkg.Msg")
    return file


def request_for(
    *files: descriptor_pb2.FileDescriptorProto, parameter: str = ""
) -> plugin_pb2.CodeGeneratorRequest:
    return plugin_pb2.CodeGeneratorRequest(
        file_to_generate=[files[-1].name], parameter=parameter, proto_file=files
    )


def test_supported_features() -> None:
    response = generate(request_for(simple_file()))
    assert not response.error
    assert response.supported_features == (
        plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
        | plugin_pb2.CodeGeneratorResponse.FEATURE_SUPPORTS_EDITIONS
    )
    assert response.minimum_edition == descriptor_pb2.EDITION_PROTO2
    assert response.maximum_edition == descriptor_pb2.EDITION_2024
    assert [f.name for f in response.file] == ["svc_connect.py"]


def test_parse_parameter() -> None:
    assert parse_parameter("") == Options()
    assert parse_parameter("line_length=100") == Options(line_length=100)
    assert parse_parameter(" line_length = 120 ,") == Options(line_length=120)
    assert parse_parameter("flavor=sync,line_length=100") == Options(100, "sync")


@pytest.mark.parametrize(
    ("flavor", "present", "absent"),
    [
        ("async", ["class AsyncSvcClient:", "class SvcASGIApplication("], ["class SvcClient:"]),
        (
            "sync",
            ["class SvcClient:", "class SvcSync:", "class SvcWSGIApplication("],
            ["AsyncSvcClient", "ASGIApplication"],
        ),
        ("both", ["class AsyncSvcClient:", "class SvcClient:", "class SvcWSGIApplication("], []),
    ],
)
def test_flavor_picks_the_classes(flavor: str, present: list[str], absent: list[str]) -> None:
    response = generate(request_for(simple_file(), parameter=f"flavor={flavor}"))
    assert not response.error
    (output,) = response.file
    for text in present:
        assert text in output.content
    for text in absent:
        assert text not in output.content


@pytest.mark.parametrize(
    ("parameter", "message"),
    [
        (
            "frobnicate",
            "unknown parameter 'frobnicate' (supported parameters: line_length, flavor)",
        ),
        ("flavor=fast", "invalid value for parameter flavor: 'fast'"),
        ("line_length=100,mode=fast", "unknown parameter 'mode'"),
        ("line_length", "invalid value for parameter line_length: ''"),
        ("line_length=abc", "invalid value for parameter line_length: 'abc'"),
        ("line_length=20", "expected an integer between 79 and 1000"),
    ],
)
def test_bad_parameter_is_reported_in_response(parameter: str, message: str) -> None:
    response = generate(request_for(simple_file(), parameter=parameter))
    assert message in response.error
    assert not response.file
    with pytest.raises(GeneratorError):
        parse_parameter(parameter)


def test_unknown_message_type_is_reported() -> None:
    response = generate(request_for(simple_file(input_type=".other.Missing")))
    assert response.error == "svc.proto: unknown message type .other.Missing"


def test_missing_file_to_generate_is_reported() -> None:
    request = plugin_pb2.CodeGeneratorRequest(file_to_generate=["nope.proto"])
    assert generate(request).error == "nope.proto: file to generate is missing from the request"


@pytest.mark.parametrize(
    ("path", "part"), [("import/types.proto", "import"), ("v1/2fa.proto", "2fa_pb2")]
)
def test_module_path_that_python_cannot_import_is_reported(path: str, part: str) -> None:
    messages = descriptor_pb2.FileDescriptorProto(name=path, package="pkg")
    messages.message_type.add(name="Msg")
    file = simple_file()
    file.dependency.append(path)
    file.ClearField("message_type")
    response = generate(request_for(messages, file))
    assert f"{part!r} is not a valid Python identifier" in response.error
    assert "pkg.Msg" in response.error


def test_files_without_services_produce_nothing(
    tmp_path: Path, build_request: BuildRequest
) -> None:
    files = ["common/v1/types.proto", "names/v1/no-services.proto", "shop/v1/messages.proto"]
    response = generate(build_request(tmp_path, files))
    assert not response.error
    assert not response.file


def test_main_reads_stdin_and_writes_stdout() -> None:
    request = request_for(simple_file(), parameter="bogus")
    result = subprocess.run(
        [sys.executable, "-m", "protoc_plugin.main"],
        input=request.SerializeToString(),
        capture_output=True,
        check=True,
        cwd=REPO_ROOT,
    )
    response = plugin_pb2.CodeGeneratorResponse.FromString(result.stdout)
    assert "unknown parameter 'bogus'" in response.error
