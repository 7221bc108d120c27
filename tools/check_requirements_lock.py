#!/usr/bin/env python3
"""Keep ``requirements_lock.txt`` (Bazel's pip lock) in step with ``uv.lock``.

Bazel users get the Python dependencies through rules_python's ``pip.parse``, which reads a
pip-style lock file. uv.lock stays the single source of truth: this script derives the Bazel
lock from it with ``uv export`` and either checks the committed file (the default; exit 1 and a
diff when they differ) or rewrites it (``--write``).

What goes into the Bazel lock: the closure, in uv.lock's dependency graph, of

* the runtime dependencies of ``connect-python`` (aiohttp, h2, httptools, multidict, protobuf),
* its ``brotli``, ``zstd`` and ``snappy`` extras (the conformance matrix uses every compression),
* ``hypercorn``, which the example server and the conformance server run on.

Pins and hashes are exactly those ``uv export`` prints for uv.lock; the closure is taken over
package names, so a marker can only make a line broader, never drop a package that a root needs.

The Bazel pip hub serves one Python version, ``PYTHON_VERSION`` (MODULE.bazel's ``pip.parse``),
and rules_python's ``pip.parse`` rejects a lock that lists a package twice (uv.lock may pin
different versions for different Python versions). So the lock is resolved for that version
alone: every environment marker is evaluated for it (on Linux, macOS and Windows); lines whose
marker is false everywhere are dropped, markers that are true everywhere are removed, and a
marker that depends on the platform is kept. The result must list each package once.
"""

from __future__ import annotations

import argparse
import difflib
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "requirements_lock.txt"
PROJECT = "connect-python"
EXTRAS = ("brotli", "zstd", "snappy")
EXTRA_ROOTS = ("hypercorn",)
# The one Python version of the Bazel pip hub (MODULE.bazel: pip.parse(python_version = ...)).
PYTHON_VERSION = "3.12"
# Marker environments of that version: (sys_platform, platform_system, os_name, machine).
PLATFORMS = (
    ("linux", "Linux", "posix", "x86_64"),
    ("linux", "Linux", "posix", "aarch64"),
    ("darwin", "Darwin", "posix", "x86_64"),
    ("darwin", "Darwin", "posix", "arm64"),
    ("win32", "Windows", "nt", "AMD64"),
)

HEADER = f"""\
# Bazel pip lock for connect-python (rules_python pip.parse in MODULE.bazel), resolved for
# Python {PYTHON_VERSION} alone: one version of each package.
# GENERATED from uv.lock by tools/check_requirements_lock.py --write; do not edit.
# CI checks that it matches uv.lock: uv run python tools/check_requirements_lock.py
"""


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def closure(lock: dict) -> set[str]:
    """Names of the packages the Bazel build needs, following every edge regardless of markers."""
    packages: dict[str, list[dict]] = {}
    for pkg in lock["package"]:
        packages.setdefault(_normalize(pkg["name"]), []).append(pkg)
    (project,) = packages[PROJECT]
    roots = [dep["name"] for dep in project.get("dependencies", [])]
    for extra in EXTRAS:
        roots += [dep["name"] for dep in project.get("optional-dependencies", {})[extra]]
    roots += EXTRA_ROOTS
    seen: set[str] = set()
    todo = [_normalize(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in packages:
            raise SystemExit(f"check_requirements_lock: {name} is not in uv.lock")
        seen.add(name)
        for version in packages[name]:
            todo += [_normalize(dep["name"]) for dep in version.get("dependencies", [])]
    return seen


def export() -> list[tuple[str, list[str]]]:
    """``uv export`` of everything the lock may need, as (package name, lines) entries."""
    cmd = ["uv", "export", "--frozen", "--no-emit-project", "--group", "dev"]
    cmd += [arg for extra in EXTRAS for arg in ("--extra", extra)]
    cmd += ["--format", "requirements-txt", "--no-annotate", "--no-header"]
    try:
        out = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True).stdout
    except FileNotFoundError:
        raise SystemExit("check_requirements_lock: uv is required (pip install uv)") from None
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"check_requirements_lock: {' '.join(cmd)} failed:\n{exc.stderr}") from exc
    entries: list[tuple[str, list[str]]] = []
    for line in out.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith((" ", "\t")):
            entries[-1][1].append(line)
        else:
            entries.append((_normalize(line.split("==", 1)[0]), [line]))
    return entries


def for_python_version(lines: list[str]) -> list[str] | None:
    """One exported entry resolved for ``PYTHON_VERSION``: None to drop it, else its lines."""
    try:
        from packaging.markers import Marker
    except ModuleNotFoundError:
        raise SystemExit(
            "check_requirements_lock: needs `packaging`; run it with uv run python ..."
        ) from None
    first = lines[0].removesuffix("\\").rstrip()
    requirement, sep, marker_text = first.partition(";")
    if not sep:
        return lines
    marker = Marker(marker_text.strip())
    full_version = PYTHON_VERSION + ".0"
    results = {
        marker.evaluate(
            {
                "python_version": PYTHON_VERSION,
                "python_full_version": full_version,
                "implementation_name": "cpython",
                "platform_python_implementation": "CPython",
                "implementation_version": full_version,
                "sys_platform": sys_platform,
                "platform_system": system,
                "os_name": os_name,
                "platform_machine": machine,
            }
        )
        for sys_platform, system, os_name, machine in PLATFORMS
    }
    if results == {False}:
        return None
    if results == {True}:
        first = requirement.rstrip()
    suffix = " \\" if lines[0].endswith("\\") else ""
    return [first + suffix, *lines[1:]]


def render() -> str:
    with (REPO / "uv.lock").open("rb") as f:
        wanted = closure(tomllib.load(f))
    exported = [(name, lines) for name, lines in export() if name in wanted]
    missing = sorted(wanted - {name for name, _ in exported})
    if missing:
        raise SystemExit(f"check_requirements_lock: uv export lacks {', '.join(missing)}")
    entries: list[list[str]] = []
    pins: dict[str, str] = {}
    for name, lines in exported:
        # Packages only other Python versions need (tomli, taskgroup... on 3.10) drop out here.
        resolved = for_python_version(lines)
        if resolved is None:
            continue
        pin = resolved[0].split(" ", 1)[0]
        if name in pins:
            raise SystemExit(
                f"check_requirements_lock: {pins[name]} and {pin} both apply to Python "
                f"{PYTHON_VERSION}; pip.parse needs one version of each package"
            )
        pins[name] = pin
        entries.append(resolved)
    return HEADER + "".join(line + "\n" for lines in entries for line in lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite requirements_lock.txt")
    args = parser.parse_args()
    expected = render()
    if args.write:
        LOCK.write_text(expected)
        print(f"check_requirements_lock: wrote {LOCK.relative_to(REPO)}")
        return 0
    actual = LOCK.read_text() if LOCK.exists() else ""
    if actual == expected:
        print("check_requirements_lock: requirements_lock.txt matches uv.lock")
        return 0
    sys.stdout.writelines(
        difflib.unified_diff(
            actual.splitlines(keepends=True),
            expected.splitlines(keepends=True),
            "requirements_lock.txt (committed)",
            "requirements_lock.txt (from uv.lock)",
        )
    )
    print(
        "check_requirements_lock: requirements_lock.txt is out of date; "
        "run uv run python tools/check_requirements_lock.py --write",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
