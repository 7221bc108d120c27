"""ConnectError and ErrorDetail: defaults, Any packing, and header input copying.

Written to kill the mutants tools/mutation.sh found surviving in connectrpc._core.error and
connectrpc._core.headers.
"""

from __future__ import annotations

from google.protobuf import any_pb2, wrappers_pb2
from multidict import CIMultiDict, MultiDict

from connectrpc._core.error import ErrorDetail
from connectrpc._core.headers import to_multidict
from connectrpc.errors import Code, ConnectError


def test_defaults() -> None:
    err = ConnectError(Code.INTERNAL)
    assert (err.message, err.details, err.wire, len(err.metadata)) == ("", (), False, 0)
    assert str(err) == "internal"
    assert err.args == ("internal",)
    assert ConnectError(Code.ABORTED, "m").args == ("aborted: m",)


def test_detail_any_round_trip() -> None:
    value = wrappers_pb2.StringValue(value="v").SerializeToString()
    packed = any_pb2.Any(type_url="type.googleapis.com/google.protobuf.StringValue", value=value)
    detail = ErrorDetail.from_any(packed)
    assert (detail.type_name, detail.value) == ("google.protobuf.StringValue", value)
    assert detail.to_any() == packed
    # Any host and path may precede the type name; only the last segment is the name.
    deep = any_pb2.Any(type_url="example.com/a/b/google.protobuf.StringValue", value=value)
    assert ErrorDetail.from_any(deep).type_name == "google.protobuf.StringValue"
    bare = any_pb2.Any(type_url="google.protobuf.StringValue", value=value)
    assert ErrorDetail.from_any(bare).type_name == "google.protobuf.StringValue"


def test_to_multidict_copies_every_kind_of_input() -> None:
    source = MultiDict([("A", "1"), ("a", "2")])
    got = to_multidict(source)
    assert isinstance(got, CIMultiDict)
    assert list(got.items()) == [("A", "1"), ("a", "2")]
    assert list(to_multidict([("k", "1"), ("K", "2")]).items()) == [("k", "1"), ("K", "2")]
    assert list(to_multidict({"k": "v"}).items()) == [("k", "v")]
    assert len(to_multidict(None)) == 0
