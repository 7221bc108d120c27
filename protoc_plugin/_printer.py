"""An indenting line writer that emits code already in ``ruff format`` style.

The generator never runs a formatter; instead the few bracketed constructs it produces
(calls, ``def`` parameter lists, class bases, subscripts) are described as :class:`Group`
values and laid out by :meth:`Printer.emit` with these rules, which match ``ruff format``
(and black) for the shapes the generator uses:

* a group is written on one line when that line fits in ``line_length``;
* otherwise it is exploded one element per line. Groups with ``magic_comma=True`` then get a
  trailing comma, which makes the exploded layout stable under the formatter at any line
  length; groups that cannot take a trailing comma (single-element subscripts such as
  ``AsyncIterator[Foo]``) put their element alone on an indented line;
* the text after the closing bracket (``tail``) may contain another group, laid out on the
  closing line (``) -> AsyncIterator[...]:``);
* with ``split_tail_first=True`` (annotated assignments), the tail group is split first when
  the head still fits on the first line;
* with ``paren_tail=True`` (``def`` return annotations), a tail that is plain text and does
  not fit on the closing line is wrapped in parentheses on a line of its own, if it fits
  there.

Pragma comments (``# noqa: ...``) added with ``comment=`` do not count towards the width,
as in ruff.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeAlias

__all__ = ["Group", "Node", "Printer"]


@dataclass(frozen=True)
class Group:
    """``head`` + ``open`` + comma-separated ``items`` + ``close`` + ``tail`` [+ ``tail_node``]."""

    head: str
    items: Sequence[Node]
    open: str = "("
    close: str = ")"
    magic_comma: bool = True
    tail: str = ""
    tail_node: Node | None = None
    tail_end: str = ""
    split_tail_first: bool = False
    paren_tail: bool = False


#: A piece of code: plain text that is never split, or a splittable :class:`Group`.
Node: TypeAlias = str | Group


def flat(node: Node) -> str:
    """Return ``node`` written on a single line."""
    if isinstance(node, str):
        return node
    return _flat_without_tail(node) + node.tail + _flat_tail(node)


def _flat_without_tail(group: Group) -> str:
    return group.head + group.open + ", ".join(flat(item) for item in group.items) + group.close


def _flat_tail(group: Group) -> str:
    if group.tail_node is None:
        return group.tail_end
    return flat(group.tail_node) + group.tail_end


class Printer:
    """Collects lines of Python code with the current indentation."""

    def __init__(self, line_length: int = 88, indent_unit: str = "    ") -> None:
        """Create an empty printer laying out groups for ``line_length`` columns."""
        self.line_length = line_length
        self._indent_unit = indent_unit
        self._level = 0
        self._lines: list[str] = []

    @contextmanager
    def indented(self) -> Iterator[None]:
        """Indent the lines written inside the ``with`` block by one level."""
        self._level += 1
        try:
            yield
        finally:
            self._level -= 1

    def line(self, text: str = "", *, comment: str = "") -> None:
        """Write one line at the current indentation (an empty line for empty ``text``)."""
        if comment:
            text = f"{text}  {comment}"
        self._lines.append(self._indent_unit * self._level + text if text else "")

    def fits(self, text: str) -> bool:
        """Return True if ``text`` fits on one line at the current indentation."""
        return len(self._indent_unit) * self._level + len(text) <= self.line_length

    def emit(self, node: Node, prefix: str = "", suffix: str = "", *, comment: str = "") -> None:
        """Write ``prefix + node + suffix``, splitting ``node`` over several lines if needed."""
        one_line = prefix + flat(node) + suffix
        if isinstance(node, str) or self.fits(one_line):
            self.line(one_line, comment=comment)
            return
        if node.split_tail_first and isinstance(node.tail_node, Group):
            head = prefix + _flat_without_tail(node) + node.tail
            if self.fits(head + node.tail_node.head + node.tail_node.open):
                self.emit(node.tail_node, head, node.tail_end + suffix, comment=comment)
                return
        self.line(prefix + node.head + node.open, comment=comment)
        with self.indented():
            for item in node.items:
                self.emit(item, suffix="," if node.magic_comma else "")
        closing = node.close + node.tail
        tail_node = node.tail_node
        if tail_node is None:
            self.line(closing + node.tail_end + suffix)
            return
        if (
            node.paren_tail
            and isinstance(tail_node, str)
            and not self.fits(closing + tail_node + node.tail_end + suffix)
        ):
            with self.indented():
                fits_alone = self.fits(tail_node)
            if fits_alone:
                tail_node = Group("", [tail_node], magic_comma=False)
        self.emit(tail_node, closing, node.tail_end + suffix)

    def docstring(self, lines: Sequence[str]) -> None:
        """Write a docstring; ``lines`` are already escaped, the first one is the summary."""
        if len(lines) == 1:
            self.line(f'"""{lines[0]}"""')
            return
        self.line(f'"""{lines[0]}')
        for text in lines[1:]:
            self.line(text)
        self.line('"""')

    def text(self) -> str:
        """Return everything written so far, ending with a single newline."""
        return "\n".join(self._lines).rstrip("\n") + "\n"
