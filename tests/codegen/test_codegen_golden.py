"""Golden tests: the generator output for ``testdata/protos`` must match ``testdata/golden``.

After an intended change to the generated code, regenerate the golden files with::

    UPDATE_GOLDEN=1 uv run pytest tests/codegen

and review the diff. The golden files are also checked the way a project using them would
check them: ``ruff check``, ``ruff format --check`` and ``mypy --strict`` (together with the
``_pb2.py``/``_pb2.pyi`` modules protoc generates), and they are imported and used against
the ``connectrpc`` runtime.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from google.protobuf.compiler import plugin_pb2

from protoc_plugin._generator import generate

# Signatures of the conftest fixtures of the same names.
RunCommand = Callable[..., subprocess.CompletedProcess[str]]
BuildRequest = Callable[..., plugin_pb2.CodeGeneratorRequest]

TESTDATA = Path(__file__).parent / "testdata"
PROTOS = TESTDATA / "protos"
GOLDEN = TESTDATA / "golden"
REPO_ROOT = Path(__file__).resolve().parents[2]

UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"

# The test protos that declare services, and the file generated for each.
EXPECTED_OUTPUTS = {
    "editions/v1/editions.proto": "editions/v1/editions_connect.py",
    "eliza/v1/eliza.proto": "eliza/v1/eliza_connect.py",
    "longnames/v1/long-file-name.proto": "longnames/v1/long_file_name_connect.py",
    "names/v1/names.proto": "names/v1/names_connect.py",
    "nopackage.proto": "nopackage_connect.py",
    "shop/v1/shop.proto": "shop/v1/shop_connect.py",
}


def golden_files() -> dict[str, str]:
    return {
        p.relative_to(GOLDEN).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(GOLDEN.rglob("*_connect.py"))
    }


def write_golden(files: dict[str, str]) -> None:
    for stale in GOLDEN.rglob("*_connect.py"):
        stale.unlink()
    for name, content in files.items():
        path = GOLDEN / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


def test_output_matches_golden(generated: dict[str, str]) -> None:
    if UPDATE_GOLDEN:
        write_golden(generated)
    golden = golden_files()
    assert sorted(generated) == sorted(golden), "run UPDATE_GOLDEN=1 to update the golden files"
    for name, content in generated.items():
        assert content == golden[name], f"{name} differs from golden; see the module docstring"


def test_only_files_with_services_produce_output(generated: dict[str, str]) -> None:
    assert sorted(generated) == sorted(EXPECTED_OUTPUTS.values())


def test_protoc_with_plugin_matches_golden(
    tmp_path: Path, plugin_script: Path, run_protoc: RunCommand
) -> None:
    """Run the real protoc with the plugin executable, as users do."""
    out = tmp_path / "out"
    out.mkdir()
    run_protoc(
        f"--plugin=protoc-gen-connect_python={plugin_script}",
        f"--connect_python_out={out}",
        *sorted(p.relative_to(PROTOS).as_posix() for p in PROTOS.rglob("*.proto")),
    )
    produced = {
        p.relative_to(out).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }
    assert produced == golden_files()


def test_protoc_reports_plugin_errors(tmp_path: Path, plugin_script: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"--plugin=protoc-gen-connect_python={plugin_script}",
            f"--connect_python_out={tmp_path}",
            "--connect_python_opt=frobnicate=1",
            "nopackage.proto",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "unknown parameter 'frobnicate'" in result.stderr


def test_golden_passes_ruff(run: RunCommand) -> None:
    """``ruff check`` and ``ruff format --check`` with ``testdata/ruff.toml``."""
    run([sys.executable, "-m", "ruff", "check", "--no-cache", str(GOLDEN)], cwd=REPO_ROOT)
    run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", str(GOLDEN)],
        cwd=REPO_ROOT,
    )


@pytest.mark.parametrize("line_length", [79, 100, 120])
def test_line_length_parameter_output_is_formatted(
    tmp_path: Path, build_request: BuildRequest, run: RunCommand, line_length: int
) -> None:
    files = sorted(EXPECTED_OUTPUTS)
    response = generate(build_request(tmp_path, files, f"line_length={line_length}"))
    assert not response.error
    out = tmp_path / "out"
    for file in response.file:
        path = out / file.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(file.content, encoding="utf-8")
    run(
        [
            sys.executable,
            "-m",
            "ruff",
            "format",
            "--isolated",
            "--no-cache",
            "--check",
            f"--line-length={line_length}",
            str(out),
        ]
    )


@pytest.fixture
def generated_package(tmp_path: Path, run_protoc: RunCommand) -> Path:
    """A directory with the golden modules and the _pb2.py/.pyi modules they import."""
    root = tmp_path / "pkg"
    root.mkdir()
    run_protoc(
        f"--python_out={root}",
        f"--pyi_out={root}",
        *sorted(p.relative_to(PROTOS).as_posix() for p in PROTOS.rglob("*.proto")),
    )
    for name in golden_files():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(GOLDEN / name, root / name)
    return root


def test_golden_passes_mypy_strict(generated_package: Path, run: RunCommand) -> None:
    # protoc's .pyi output is not ours to fix (it uses bare generics, which --strict rejects),
    # so errors are ignored in the _pb2 modules only.
    pb2_modules = sorted(
        p.relative_to(generated_package).with_suffix("").as_posix().replace("/", ".")
        for p in generated_package.rglob("*_pb2.pyi")
    )
    config = generated_package / "mypy.ini"
    config.write_text(
        "[mypy]\nstrict = True\npython_version = 3.10\nexplicit_package_bases = True\n"
        + "".join(f"\n[mypy-{module}]\nignore_errors = True\n" for module in pb2_modules)
    )
    run(
        [
            sys.executable,
            "-m",
            "mypy",
            f"--config-file={config}",
            f"--cache-dir={generated_package / '.mypy_cache'}",
            *sorted(golden_files()),
        ],
        cwd=generated_package,
    )


USAGE = textwrap.dedent(
    """
    import asyncio

    import connectrpc.errors
    import eliza.v1.eliza_connect as eliza_connect
    import eliza.v1.eliza_pb2 as eliza_pb2
    import names.v1.names_connect as names_connect
    import nopackage_connect
    import shop.v1.shop_connect as shop_connect
    import editions.v1.editions_connect
    import longnames.v1.long_file_name_connect

    methods = eliza_connect.ElizaServiceMethods
    assert methods.SAY.procedure == "/eliza.v1.ElizaService/Say", methods.SAY.procedure
    assert methods.SAY.input is eliza_pb2.SayRequest
    assert methods.SAY.idempotency.name == "NO_SIDE_EFFECTS"
    assert methods.CONVERSE.stream_type.name == "BIDI_STREAM"
    assert methods.INTRODUCE.stream_type.name == "SERVER_STREAM"
    assert methods.REFLECT.stream_type.name == "CLIENT_STREAM"
    assert nopackage_connect.EchoMethods.ECHO.procedure == "/Echo/Echo"
    assert shop_connect.ShopServiceMethods.PUT_ITEM.idempotency.name == "IDEMPOTENT"
    assert names_connect.MethodsMethods.IMPORT.procedure == "/names.v1.Methods/Import"
    assert names_connect.HiddenMethods.PING.procedure == "/names.v1._Hidden/Ping"

    async def main() -> None:
        try:
            await eliza_connect.ElizaService().say(eliza_pb2.SayRequest(), None)
        except connectrpc.errors.ConnectError as err:
            assert err.code is connectrpc.errors.Code.UNIMPLEMENTED, err.code
            assert "eliza.v1.ElizaService.Say is not implemented" in str(err), str(err)
        else:
            raise AssertionError("expected UNIMPLEMENTED")
        client = eliza_connect.AsyncElizaServiceClient("http://localhost:1")
        await client._client.close()

    asyncio.run(main())
    eliza_connect.ElizaServiceASGIApplication(eliza_connect.ElizaService())
    names_connect.MethodsASGIApplication(names_connect.Methods())
    shop_connect.ShopServiceASGIApplication(shop_connect.ShopService())
    print("ok")
    """
)


def test_golden_imports_and_runs_against_runtime(generated_package: Path, run: RunCommand) -> None:
    script = generated_package / "usage.py"
    script.write_text(USAGE)
    result = run([sys.executable, str(script)], cwd=generated_package)
    assert result.stdout.strip() == "ok"
