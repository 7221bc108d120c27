"""Fixtures for the code generator tests: running protoc and building plugin requests.

Test data lives in ``testdata/``:

* ``protos/``: the ``.proto`` files the generator is tested on;
* ``golden/``: the expected ``_connect.py`` output for them (regenerate with
  ``UPDATE_GOLDEN=1 uv run pytest tests/codegen``);
* ``ruff.toml``: lint/format settings for ``golden/`` (the repository settings, with the
  line length the generator defaults to and the import sections of a project that owns the
  ``_pb2`` modules).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2

from protoc_plugin._generator import generate

TESTDATA = Path(__file__).parent / "testdata"
PROTOS = TESTDATA / "protos"
GOLDEN = TESTDATA / "golden"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _wkt_include() -> Path:
    """The directory of the well-known type protos bundled with grpcio-tools."""
    spec = importlib.util.find_spec("grpc_tools")
    if spec is None or spec.origin is None:
        raise RuntimeError("grpcio-tools is required for the code generator tests")
    return Path(spec.origin).parent / "_proto"


WKT_INCLUDE = _wkt_include()

RunCommand = Callable[..., subprocess.CompletedProcess[str]]
BuildRequest = Callable[..., plugin_pb2.CodeGeneratorRequest]


def proto_files() -> list[str]:
    """All test protos, as protoc names them (relative to ``PROTOS``, ``/``-separated)."""
    return sorted(p.relative_to(PROTOS).as_posix() for p in PROTOS.rglob("*.proto"))


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, fail the test with its output."""
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(
            f"command failed ({result.returncode}): {' '.join(args)}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def _run_protoc(*args: str) -> subprocess.CompletedProcess[str]:
    """Run grpcio-tools' protoc on the test protos (well-known types on the include path)."""
    return _run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"-I{WKT_INCLUDE}", *args]
    )


def _build_request(
    tmp_dir: Path, files: list[str], parameter: str = ""
) -> plugin_pb2.CodeGeneratorRequest:
    """Build the ``CodeGeneratorRequest`` protoc would send to the plugin for ``files``."""
    descriptor_set = tmp_dir / "descriptors.binpb"
    _run_protoc(
        f"--descriptor_set_out={descriptor_set}",
        "--include_source_info",
        "--include_imports",
        *files,
    )
    file_set = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    return plugin_pb2.CodeGeneratorRequest(
        file_to_generate=files, parameter=parameter, proto_file=file_set.file
    )


@pytest.fixture(scope="session")
def run() -> RunCommand:
    """``run(args, cwd=None)``: run a command, failing the test (with its output) on error."""
    return _run


@pytest.fixture(scope="session")
def run_protoc() -> RunCommand:
    """``run_protoc(*args)``: run protoc with the test protos and well-known types included."""
    return _run_protoc


@pytest.fixture(scope="session")
def build_request() -> BuildRequest:
    """``build_request(tmp_dir, files, parameter="")``: the request protoc sends the plugin."""
    return _build_request


@pytest.fixture(scope="session")
def generator_request(tmp_path_factory: pytest.TempPathFactory) -> plugin_pb2.CodeGeneratorRequest:
    """The request for all test protos with default parameters."""
    return _build_request(tmp_path_factory.mktemp("request"), proto_files())


@pytest.fixture(scope="session")
def generated(generator_request: plugin_pb2.CodeGeneratorRequest) -> dict[str, str]:
    """Generator output for all test protos: file name -> content."""
    response = generate(generator_request)
    assert not response.error
    return {f.name: f.content for f in response.file}


@pytest.fixture
def plugin_script(tmp_path: Path) -> Path:
    """An executable that runs the plugin with this interpreter, for protoc's --plugin."""
    script = tmp_path / "protoc-gen-connect_python"
    pythonpath = os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    script.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH='{pythonpath}' exec '{sys.executable}' -m protoc_plugin.main \"$@\"\n"
    )
    script.chmod(0o755)
    return script
