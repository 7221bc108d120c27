"""Unit tests for the indenting printer and its line-splitting rules."""

from __future__ import annotations

from protoc_plugin._printer import Group, Printer


def render(node: Group | str, line_length: int = 40, level: int = 0) -> str:
    printer = Printer(line_length=line_length)
    if level:
        with printer.indented():
            printer.emit(node)
    else:
        printer.emit(node)
    return printer.text()


def test_indentation_and_blank_lines() -> None:
    printer = Printer()
    printer.line("class A:")
    with printer.indented():
        printer.line("x = 1")
        printer.line()
        printer.line("y = 2")
    assert printer.text() == "class A:\n    x = 1\n\n    y = 2\n"


def test_group_fits_on_one_line() -> None:
    assert render(Group("f", ["a", "b"])) == "f(a, b)\n"


def test_group_explodes_with_magic_trailing_comma() -> None:
    assert render(Group("function", ["argument_one", "argument_two"]), line_length=20) == (
        "function(\n    argument_one,\n    argument_two,\n)\n"
    )


def test_single_element_subscript_splits_without_comma() -> None:
    node = Group("x: AsyncIterator", ["module.SomeLongMessageName"], "[", "]", magic_comma=False)
    assert render(node, line_length=30) == "x: AsyncIterator[\n    module.SomeLongMessageName\n]\n"


def test_def_return_annotation_is_laid_out_on_closing_line() -> None:
    returns = Group("AsyncIterator", ["module.Response"], "[", "]", magic_comma=False)
    node = Group("def f", ["self", "request: module.Request"], tail=" -> ", tail_node=returns)
    assert render(node, line_length=30) == (
        "def f(\n    self,\n    request: module.Request,\n) -> AsyncIterator[\n"
        "    module.Response\n]\n"
    )


def test_def_long_plain_return_annotation_is_parenthesized() -> None:
    node = Group("def f", ["self"], tail=" -> ", tail_node="x" * 30, tail_end=":", paren_tail=True)
    assert render(node, line_length=35) == "def f(\n    self,\n) -> (\n    " + "x" * 30 + "\n):\n"
    # Not when it does not fit inside the parentheses either.
    assert render(node, line_length=33) == "def f(\n    self,\n) -> " + "x" * 30 + ":\n"


def test_split_tail_first_keeps_head_on_first_line() -> None:
    call = Group("make", ["a=1", "b=2"])
    node = Group("X: T", ["A", "B"], "[", "]", tail=" = ", tail_node=call, split_tail_first=True)
    assert render(node, line_length=20) == "X: T[A, B] = make(\n    a=1,\n    b=2,\n)\n"
    # When even the head does not fit, the annotation is exploded instead.
    assert render(node, line_length=12) == (
        "X: T[\n    A,\n    B,\n] = make(\n    a=1,\n    b=2,\n)\n"
    )


def test_pragma_comment_does_not_count_towards_width() -> None:
    printer = Printer(line_length=11)
    printer.emit(Group("class A", ["B"], tail=":"), comment="# noqa: N801")
    assert printer.text() == "class A(B):  # noqa: N801\n"


def test_docstring() -> None:
    printer = Printer()
    with printer.indented():
        printer.docstring(["Summary."])
        printer.docstring(["Summary.", "", "  indented"])
    assert printer.text() == ('    """Summary."""\n    """Summary.\n\n      indented\n    """\n')
