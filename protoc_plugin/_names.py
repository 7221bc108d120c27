"""Naming rules shared by the code generator.

Everything here is a pure function of its arguments, so the rules can be unit tested and
documented in one place:

* :func:`snake_case` / :func:`upper_snake_case` turn proto rpc names (``SayHello``) into
  Python method names (``say_hello``) and constant names (``SAY_HELLO``).
* :func:`pb2_module_name` / :func:`pb2_module_alias` reproduce how protoc's own
  ``--python_out`` names the ``_pb2`` module of a ``.proto`` file and how it aliases the
  import (``import foo.bar_pb2 as foo_dot_bar__pb2``).
* :func:`connect_output_path` names the file this plugin writes for a ``.proto`` file: it sits
  next to the ``_pb2.py`` module, with ``_connect`` instead of ``_pb2``.
* :class:`NameScope` hands out identifiers within one Python namespace (a module or a class
  body), escaping reserved words and making colliding names distinct deterministically: the
  candidate gets a ``_`` appended until every name derived from it is free.
"""

from __future__ import annotations

import builtins
import keyword
from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "SOFT_KEYWORDS",
    "NameScope",
    "connect_output_path",
    "is_cap_words",
    "is_python_keyword",
    "pb2_module_alias",
    "pb2_module_name",
    "python_builtin_names",
    "snake_case",
    "upper_snake_case",
]

#: Soft keywords of current Python versions. Fixed here (rather than taken from
#: ``keyword.softkwlist``) so that the output does not depend on the interpreter version.
SOFT_KEYWORDS = frozenset({"_", "case", "match", "type"})


def is_python_keyword(name: str) -> bool:
    """Return True for hard keywords (``import``, ``None``, ...) and soft keywords (``match``)."""
    return keyword.iskeyword(name) or name in SOFT_KEYWORDS


def python_builtin_names() -> frozenset[str]:
    """Return the names of the ``builtins`` module that do not start with an underscore."""
    return frozenset(name for name in dir(builtins) if not name.startswith("_"))


def snake_case(name: str) -> str:
    """Convert a proto identifier to snake_case: ``SayHello`` -> ``say_hello``.

    An underscore is inserted before an upper-case letter that follows a lower-case letter or
    a digit, and before the last capital of an acronym that starts a new word
    (``HTTPRequest`` -> ``http_request``, ``GetV2`` -> ``get_v2``). Existing underscores are
    kept as they are (``Say_Hello`` -> ``say_hello``). Leading underscores are dropped: Python
    treats them as "private" and mangles ``__name`` inside classes. A name made only of
    underscores becomes ``rpc``.
    """
    stripped = name.lstrip("_")
    if not stripped:
        return "rpc"
    out: list[str] = []
    for i, ch in enumerate(stripped):
        if ch.isupper():
            prev = stripped[i - 1] if i > 0 else ""
            nxt = stripped[i + 1] if i + 1 < len(stripped) else ""
            starts_word = prev.islower() or prev.isdigit() or (prev.isupper() and nxt.islower())
            if starts_word:
                out.append("_")
            out.append(ch.lower())
        else:
            out.append(ch)
    return "".join(out)


def upper_snake_case(name: str) -> str:
    """Convert a proto identifier to UPPER_SNAKE_CASE: ``SayHello`` -> ``SAY_HELLO``."""
    return snake_case(name).upper()


def is_cap_words(name: str) -> bool:
    """Return True if ``name`` passes pep8-naming's CapWords check (ruff rule N801)."""
    stripped = name.lstrip("_")
    return stripped[:1].isupper() and "_" not in stripped


def _strip_proto(path: str) -> str:
    return path[: -len(".proto")] if path.endswith(".proto") else path


def pb2_module_name(proto_path: str) -> str:
    """Return the module protoc's ``--python_out`` generates for ``proto_path``.

    ``foo/bar-baz.proto`` -> ``foo.bar_baz_pb2`` (dashes become underscores, exactly as protoc
    does).
    """
    return _strip_proto(proto_path).replace("-", "_").replace("/", ".") + "_pb2"


def pb2_module_alias(module_name: str) -> str:
    """Return the alias protoc uses when importing ``module_name`` in generated code.

    ``foo.bar_baz_pb2`` -> ``foo_dot_bar__baz__pb2`` (``_`` is doubled, then ``.`` becomes
    ``_dot_``), so aliases of different modules never collide.
    """
    return module_name.replace("_", "__").replace(".", "_dot_")


def connect_output_path(proto_path: str) -> str:
    """Return the path of the ``_connect.py`` file generated for ``proto_path``.

    It is the path of protoc's ``_pb2.py`` output with ``_pb2`` replaced by ``_connect``:
    ``foo/bar-baz.proto`` -> ``foo/bar_baz_connect.py``.
    """
    return _strip_proto(proto_path).replace("-", "_") + "_connect.py"


class NameScope:
    """Allocates distinct identifiers in one Python namespace.

    ``reserved`` are names that must never be produced; ``is_reserved`` is an extra predicate
    for rules that are easier to express as code. Allocation is first come, first served, so
    the result only depends on the order of the calls (declaration order in the proto file).
    """

    def __init__(
        self,
        reserved: Iterable[str] = (),
        is_reserved: Callable[[str], bool] = is_python_keyword,
    ) -> None:
        """Create a scope in which ``reserved`` names and ``is_reserved`` matches are taken."""
        self._reserved = frozenset(reserved)
        self._is_reserved = is_reserved
        self._taken: set[str] = set()

    def is_free(self, name: str) -> bool:
        """Return True if ``name`` may still be allocated."""
        return (
            name not in self._taken and name not in self._reserved and not self._is_reserved(name)
        )

    def claim(self, base: str, derive: Callable[[str], Sequence[str]] = lambda b: [b]) -> str:
        """Allocate ``base`` (plus every name ``derive(base)`` returns) and return the base used.

        While any derived name is not free, ``_`` is appended to ``base``. With the default
        ``derive`` only ``base`` itself is allocated.
        """
        while not all(self.is_free(name) for name in derive(base)):
            base += "_"
        self._taken.update(derive(base))
        return base
