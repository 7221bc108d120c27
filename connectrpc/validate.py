"""Request validation with protovalidate: the ``connect-python[validate]`` extra.

`protovalidate <https://protovalidate.com>`_ checks messages against rules written in their
schema, as ``buf.validate`` options: predefined ones (``string.email``, ``uint32.lte``) and
custom CEL expressions on fields and messages. ``ValidationInterceptor`` applies them to every
request message of every call::

    from connectrpc.server import ServerOptions
    from connectrpc.validate import ValidationInterceptor

    app = UserServiceASGIApplication(
        UserService(), options=ServerOptions(interceptors=[ValidationInterceptor()])
    )

A request that breaks a rule fails the call with ``invalid_argument`` before the handler sees
it. The error's message lists each violation as ``field.path: message [rule id]``, and its one
detail is the ``buf.validate.Violations`` message, which ``violations_of`` decodes. On a client
stream or a bidi stream each message is checked as it arrives: the handler sees the valid
messages before the first invalid one, and the call then fails.

Only requests are validated, as in connect-go's and connect-es's validate interceptors: a
response is the server's own output, and a client with an older schema must not reject a
newer server's answers.

The same interceptor works on clients (``ClientOptions(interceptors=[...])``): an invalid
request then fails locally with the same error, without being sent. This helps only when the
client's schema is as new as the server's; otherwise it rejects requests the server would
accept, so validating on the server is the rule and on the client an option.

Rules that do not compile, or that fail while evaluating (say a CEL rule dividing by zero),
are a fault of the schema and not of the request: they fail the call with ``internal``.
"""

from __future__ import annotations

import json

from google.protobuf.message import Message

from connectrpc.errors import Code, ConnectError, ErrorDetail
from connectrpc.interceptors import Call, Interceptor

try:
    import protovalidate
    from protovalidate import CompilationError, EvaluationError, FieldPathPb, ViolationsPb
except ImportError as exc:
    raise ImportError(
        "connectrpc.validate needs protovalidate 2.0 or newer: "
        "pip install 'connect-python[validate]'"
    ) from exc

__all__ = ["ValidationInterceptor", "violations_of"]

_VIOLATIONS_TYPE = "buf.validate.Violations"
_LISTED_MAX = 10  # violations spelled out in the error message; the detail has them all


class ValidationInterceptor(Interceptor):
    """Validates each request message with protovalidate; see the module docs.

    Args:
        validator: the ``protovalidate.Validator`` to use. It compiles the rules of each
            message type once, on first use, and keeps them, so one validator (and one
            interceptor) should serve every call; it is safe to share between threads. The
            default is a new validator.
        fail_fast: stop at a message's first violation instead of collecting them all.
    """

    def __init__(
        self, validator: protovalidate.Validator | None = None, *, fail_fast: bool = False
    ) -> None:
        self._validator = protovalidate.Validator() if validator is None else validator
        self._fail_fast = fail_fast

    def on_request(self, call: Call, message: Message) -> None:
        """Raise ``ConnectError`` (``invalid_argument``) if ``message`` breaks its rules."""
        try:
            violations = self._validator.collect_violations(message, fail_fast=self._fail_fast)
        except (CompilationError, EvaluationError) as exc:
            raise ConnectError(
                Code.INTERNAL, f"cannot validate {message.DESCRIPTOR.full_name}: {exc}"
            ) from exc
        if not violations:
            return
        proto = ViolationsPb(violations=[violation.proto for violation in violations])
        raise ConnectError(
            Code.INVALID_ARGUMENT,
            _describe(proto),
            details=[ErrorDetail(_VIOLATIONS_TYPE, proto.to_binary())],
        )


def violations_of(error: ConnectError) -> ViolationsPb | None:
    """The ``buf.validate.Violations`` detail of ``error``, decoded; ``None`` if it has none.

    protovalidate's messages are protobuf-py messages, which ``ErrorDetail.unpack`` (made for
    ``google.protobuf`` classes) does not decode; this does.
    """
    for detail in error.details:
        if detail.type_name == _VIOLATIONS_TYPE:
            violations: ViolationsPb = ViolationsPb.from_binary(detail.value)
            return violations
    return None


def _describe(violations: ViolationsPb) -> str:
    """``validation error: email: must be a valid email address [string.email]; ...``."""
    lines = []
    for violation in violations.violations[:_LISTED_MAX]:
        line = violation.message or "invalid"
        path = _path(violation.field)
        if path:
            line = f"{path}: {line}"
        if violation.rule_id:
            line = f"{line} [{violation.rule_id}]"
        lines.append(line)
    more = len(violations.violations) - _LISTED_MAX
    if more > 0:
        lines.append(f"and {more} more")
    return "validation error: " + "; ".join(lines)


def _path(field: FieldPathPb | None) -> str:
    """A field path as protovalidate writes it: ``items[1].name``, ``labels["key"]``."""
    if field is None:
        return ""
    text = ""
    for element in field.elements:
        if text:
            text += "."
        text += element.field_name or str(element.field_number)
        subscript = element.subscript
        if subscript is None:
            continue
        value = subscript.value
        if isinstance(value, bool):
            text += "[true]" if value else "[false]"
        elif isinstance(value, str):
            text += f"[{json.dumps(value, ensure_ascii=False)}]"
        else:
            text += f"[{value}]"
    return text
