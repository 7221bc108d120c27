"""gRPC and gRPC-Web wire rules, pinned exactly: messages, codes, header lists and bytes.

Written against the survivors of tools/mutation.sh for connectrpc._protocol.grpc.
"""

from __future__ import annotations

import base64
import gzip
from typing import Any

import pytest
from multidict import CIMultiDict

from connectrpc._core import compression as _compression
from connectrpc._core.codec import CODECS
from connectrpc._core.envelope import encode_envelope
from connectrpc._protocol.grpc import (
    GrpcClientProtocol,
    GrpcServerProtocol,
    GrpcWebResponseDecoder,
    _status_class,
    decode_grpc_message,
    decode_status_details,
    decode_trailers_frame,
    encode_grpc_message,
    encode_status_details,
    encode_timeout,
    error_from_trailers,
    grpc_content_type,
    parse_grpc_content_type,
    parse_timeout,
    status_trailers,
)
from connectrpc._protocol.server import HTTPError, RequestPlan
from connectrpc.errors import Code, ConnectError, ErrorDetail

GZIP = _compression.get("gzip")
assert GZIP is not None

# --- timeouts ---------------------------------------------------------------------------------


def test_parse_timeout_error_message() -> None:
    with pytest.raises(ConnectError) as info:
        parse_timeout("1s")
    assert info.value.code is Code.INVALID_ARGUMENT
    assert info.value.message == (
        "protocol error: invalid grpc-timeout '1s': expected 1 to 8 digits and a unit "
        "(H, M, S, m, u or n)"
    )


def test_encode_timeout_hours() -> None:
    # 6e9 s is 100,000,000 minutes: 9 digits, so hours (rounded up).
    assert encode_timeout(6e9) == "1666667H"
    assert encode_timeout(5_999_999_940.0) == "99999999M"
    # Past what 8 digits of hours hold, the largest value is sent.
    assert encode_timeout(1e20) == "99999999H"
    assert encode_timeout(3600 * 99_999_999.0) == "99999999H"
    assert encode_timeout(3600 * 10**8 + 1.0) == "99999999H"


# --- content types ----------------------------------------------------------------------------


def test_grpc_content_type() -> None:
    assert grpc_content_type("proto", False) == "application/grpc+proto"
    assert grpc_content_type("json", True) == "application/grpc-web+json"


def test_parse_content_type_uses_the_first_parameter_split() -> None:
    assert parse_grpc_content_type("application/grpc+json; a=b; c=d") == (False, "json")
    assert parse_grpc_content_type(" application/grpc-web ;x=y") == (True, "proto")


# --- grpc-message -----------------------------------------------------------------------------


def test_encode_grpc_message_all_reserved() -> None:
    assert encode_grpc_message("\n") == "%0A"
    assert encode_grpc_message("\u00e9") == "%C3%A9"
    assert encode_grpc_message("%") == "%25"


def test_decode_grpc_message_edge_cases() -> None:
    # Characters outside latin-1 (not valid on the wire) become "?" rather than failing.
    assert decode_grpc_message("%41 \u2603") == "A ?"
    # Escapes that are not UTF-8 become U+FFFD.
    assert decode_grpc_message("%FF!") == "\ufffd!"
    # Lower-case hex digits are escapes too.
    assert decode_grpc_message("caf%c3%a9") == "caf\u00e9"
    assert decode_grpc_message("%XX%4") == "%XX%4"
    assert decode_grpc_message("%g1") == "%g1"


# --- status details ---------------------------------------------------------------------------


def test_encode_status_details_carries_code_message_and_type_urls() -> None:
    error = ConnectError(Code.NOT_FOUND, "gone", details=[ErrorDetail("t.T", b"\x01")])
    status: Any = _status_class()()
    value = encode_status_details(error)
    status.ParseFromString(base64.b64decode(value + "=" * (-len(value) % 4)))
    assert status.code == 5
    assert status.message == "gone"
    assert [(d.type_url, d.value) for d in status.details] == [("type.googleapis.com/t.T", b"\x01")]


def test_encode_status_details_keeps_a_trailing_x() -> None:
    # The base64 of this status ends in "X": only padding is stripped.
    assert encode_status_details(ConnectError(Code.NOT_FOUND, "WW")) == "CAUSAldX"


def _status_value(*type_urls: str) -> str:
    status: Any = _status_class()(code=3, message="m")
    for url in type_urls:
        packed = status.details.add()
        packed.type_url = url
        packed.value = b"v"
    return base64.b64encode(status.SerializeToString()).decode("ascii")


def test_decode_status_details_type_names() -> None:
    details = decode_status_details(_status_value("example.com/x/y.Z", "bare.Name"))
    assert [(d.type_name, d.value) for d in details] == [("y.Z", b"v"), ("bare.Name", b"v")]


def test_decode_status_details_not_a_status() -> None:
    value = base64.b64encode(b"\xff\xff\xff").decode("ascii")
    with pytest.raises(
        ValueError, match=r"^grpc-status-details-bin is not a google\.rpc\.Status: "
    ):
        decode_status_details(value)


# --- status trailers --------------------------------------------------------------------------


def test_status_trailers_exact() -> None:
    error = ConnectError(Code.NOT_FOUND, "WW", details=[])
    assert status_trailers(error) == [("grpc-status", "5"), ("grpc-message", "WW")]
    with_details = ConnectError(Code.NOT_FOUND, "", details=[ErrorDetail("t.T", b"")])
    assert status_trailers(with_details) == [
        ("grpc-status", "5"),
        ("grpc-status-details-bin", encode_status_details(with_details)),
    ]


def test_error_from_trailers_messages() -> None:
    with pytest.raises(ConnectError) as info:
        error_from_trailers(CIMultiDict())
    assert (info.value.code, info.value.message) == (
        Code.INTERNAL,
        "protocol error: no grpc-status in the trailers",
    )
    with pytest.raises(ConnectError) as info:
        error_from_trailers(CIMultiDict({"grpc-status": "x1"}))
    assert (info.value.code, info.value.message) == (
        Code.INTERNAL,
        "protocol error: invalid grpc-status 'x1'",
    )


def test_error_from_trailers_status_length() -> None:
    ten = error_from_trailers(CIMultiDict({"grpc-status": "0000000005"}))
    assert ten is not None
    assert ten.code is Code.NOT_FOUND
    assert ten.message == ""
    with pytest.raises(ConnectError) as info:
        error_from_trailers(CIMultiDict({"grpc-status": "00000000005"}))
    assert info.value.code is Code.INTERNAL
    assert info.value.message == "protocol error: invalid grpc-status '00000000005'"


def test_error_from_trailers_bad_details() -> None:
    fields = CIMultiDict({"grpc-status": "3", "grpc-status-details-bin": "!!!"})
    with pytest.raises(ConnectError) as info:
        error_from_trailers(fields)
    assert info.value.code is Code.INTERNAL
    assert info.value.message.startswith("protocol error: grpc-status-details-bin is not base64: ")


# --- trailers frame ---------------------------------------------------------------------------


def test_decode_trailers_frame_blank_lines_and_colons() -> None:
    frame = b"\r\ngrpc-status: 0\r\n\r\nX-Time:  12:30 \r\n"
    assert decode_trailers_frame(frame) == [("grpc-status", "0"), ("x-time", "12:30")]
    with pytest.raises(ValueError, match=r"^invalid gRPC-Web trailer line ' : v'$"):
        decode_trailers_frame(b" : v\r\n")


# --- server -----------------------------------------------------------------------------------


def _plan(
    web: bool = False,
    headers: dict[str, str] | None = None,
    enabled: tuple[str, ...] = ("gzip", "br"),
    trailers: bool = True,
) -> RequestPlan:
    h = {"content-type": "application/grpc-web+proto" if web else "application/grpc+proto"}
    h.update(headers or {})
    return GrpcServerProtocol(web=web).plan(None, "POST", h, b"", enabled, trailers)


def test_server_serves_and_content_types() -> None:
    grpc, web = GrpcServerProtocol(web=False), GrpcServerProtocol(web=True)
    assert grpc.serves("application/grpc+proto")
    assert not grpc.serves("application/grpc-web+proto")
    assert web.serves("application/grpc-web")
    assert not web.serves("application/grpc")
    assert not grpc.serves("application/grpc+xml")
    assert grpc.content_types(True) == [f"application/grpc+{c}" for c in CODECS]
    assert web.content_types(False) == [f"application/grpc-web+{c}" for c in CODECS]
    assert web.content_types(False)[0] == "application/grpc-web+proto"


def test_plan_refuses_other_methods() -> None:
    with pytest.raises(HTTPError) as info:
        GrpcServerProtocol(web=False).plan(
            None, "GET", {"content-type": "application/grpc"}, b"", (), True
        )
    assert info.value.status == 405
    assert info.value.error is None
    assert info.value.headers == [("allow", "POST")]


def test_plan_fields() -> None:
    plan = _plan(
        headers={
            "content-type": "Application/GRPC+json; a=b; c=d",
            "grpc-timeout": "5S",
            "grpc-encoding": "gzip",
            "grpc-accept-encoding": "br",
        }
    )
    assert plan.codec is CODECS["json"]
    assert plan.stream is True
    assert plan.request_compression is GZIP
    assert plan.response_compression is GZIP  # the request's own wins over accept
    assert plan.timeout == 5.0
    assert plan.web is False
    assert plan.content_type == "application/grpc+json"
    assert plan.error is None
    assert plan.accept_compression == ("gzip", "br")
    assert plan.http_trailers is True
    assert plan.get_message is None
    plain = _plan(headers={"content-type": "application/grpc ;x"}, trailers=True)
    assert plain.content_type == "application/grpc"


def test_plan_without_request_compression_uses_accept() -> None:
    plan = _plan(headers={"grpc-accept-encoding": "zz, br"})
    assert plan.request_compression is None
    assert plan.response_compression is _compression.get("br")


def test_plan_errors() -> None:
    timeout = _plan(headers={"grpc-timeout": "x", "grpc-encoding": "zz"})
    assert timeout.error is not None
    assert timeout.error.code is Code.INVALID_ARGUMENT  # the first error wins
    assert timeout.timeout is None
    encoding = _plan(headers={"grpc-encoding": "zz"})
    assert encoding.error is not None
    assert encoding.error.code is Code.UNIMPLEMENTED
    assert encoding.error.message == (
        "unknown compression 'zz': supported encodings are identity, gzip, br"
    )
    no_trailers = _plan(trailers=False)
    assert no_trailers.error is not None
    assert no_trailers.error.code is Code.UNAVAILABLE
    assert no_trailers.error.message == (
        "this server cannot send HTTP trailers on this connection, and gRPC needs them: call "
        "it over HTTP/2 under an ASGI server with the http.response.trailers extension "
        "(hypercorn), or use gRPC-Web or Connect"
    )
    assert no_trailers.http_trailers is False
    web = _plan(web=True, trailers=False)
    assert web.error is None
    assert web.web is True
    assert web.http_trailers is False


def test_whole_error() -> None:
    proto = GrpcServerProtocol(web=False)
    assert proto.whole_error(_plan(trailers=False)) is True
    assert proto.whole_error(_plan(trailers=True)) is False
    assert GrpcServerProtocol(web=True).whole_error(_plan(web=True, trailers=False)) is False
    assert GrpcServerProtocol(web=True).whole_error(_plan(web=True, trailers=True)) is False


def test_stream_head_and_end_stream() -> None:
    proto = GrpcServerProtocol(web=False)
    plan = _plan(headers={"grpc-encoding": "gzip"})
    head, trailers_follow = proto.stream_head(plan, CIMultiDict({"X-A": "1"}))
    assert head == [
        (b"content-type", b"application/grpc+proto"),
        (b"grpc-encoding", b"gzip"),
        (b"grpc-accept-encoding", b"gzip,br"),
        (b"x-a", b"1"),
    ]
    assert trailers_follow is True
    error = ConnectError(Code.NOT_FOUND, "no", metadata={"x-m": "m"})
    body, trailers = proto.end_stream(plan, error, CIMultiDict({"x-t": "t"}))
    assert body == b""
    assert trailers == [
        (b"grpc-status", b"5"),
        (b"grpc-message", b"no"),
        (b"x-t", b"t"),
        (b"x-m", b"m"),
    ]
    bare = _plan(enabled=())
    assert proto.stream_head(bare, CIMultiDict())[0] == [
        (b"content-type", b"application/grpc+proto")
    ]


def test_web_end_stream_is_a_trailers_frame() -> None:
    proto = GrpcServerProtocol(web=True)
    plan = _plan(web=True)
    head, trailers_follow = proto.stream_head(plan, CIMultiDict())
    assert head == [
        (b"content-type", b"application/grpc-web+proto"),
        (b"grpc-accept-encoding", b"gzip,br"),
    ]
    assert trailers_follow is False
    body, trailers = proto.end_stream(plan, None, CIMultiDict({"X-T": "t"}))
    payload = b"grpc-status: 0\r\nx-t: t\r\n"
    assert body == b"\x80" + len(payload).to_bytes(4, "big") + payload
    assert trailers is None


def test_error_response_is_trailers_only() -> None:
    proto = GrpcServerProtocol(web=False)
    plan = _plan(enabled=("gzip",))
    status, headers, body = proto.error_response(
        plan, ConnectError(Code.ABORTED, "a"), CIMultiDict({"x-h": "h"}), CIMultiDict()
    )
    assert (status, body) == (200, b"")
    assert headers == [
        (b"content-type", b"application/grpc+proto"),
        (b"grpc-accept-encoding", b"gzip"),
        (b"x-h", b"h"),
        (b"grpc-status", b"10"),
        (b"grpc-message", b"a"),
    ]


# --- client: request head and bodies ----------------------------------------------------------


def _client(
    web: bool = False, accept: tuple[str, ...] = ("gzip", "br"), limit: int | None = None
) -> GrpcClientProtocol:
    return GrpcClientProtocol(CODECS["proto"], accept, "ua/1", limit, web=web)


def test_request_head_grpc() -> None:
    head = _client().request_head("/s/M", stream=False, timeout=1.5, send_compression=GZIP)
    assert (head.method, head.path) == ("POST", "/s/M")
    assert list(head.headers.items()) == [
        ("content-type", "application/grpc+proto"),
        ("user-agent", "ua/1"),
        ("te", "trailers"),
        ("grpc-encoding", "gzip"),
        ("grpc-accept-encoding", "gzip, br"),
        ("grpc-timeout", "1500000u"),
    ]


def test_request_head_grpc_web() -> None:
    head = _client(web=True, accept=()).request_head(
        "/s/M", stream=True, timeout=None, send_compression=None
    )
    assert list(head.headers.items()) == [
        ("content-type", "application/grpc-web+proto"),
        ("user-agent", "ua/1"),
        ("x-user-agent", "ua/1"),
    ]


def test_request_head_refuses_get() -> None:
    with pytest.raises(ValueError, match=r"^GET requests are a Connect protocol feature$"):
        _client().request_head(
            "/s/M", stream=False, timeout=None, send_compression=None, get_message=b""
        )


def test_encode_bodies() -> None:
    client = _client()
    assert client.encode_unary(b"abc", None) == (b"\x00\x00\x00\x00\x03abc", False)
    body, compressed = client.encode_unary(b"abc", GZIP)
    assert compressed is True
    assert body[0] == 1
    assert int.from_bytes(body[1:5], "big") == len(body) - 5
    assert gzip.decompress(body[5:]) == b"abc"
    frame = client.encode_stream_message(b"abc", GZIP)
    assert frame[0] == 1
    assert gzip.decompress(frame[5:]) == b"abc"
    assert client.encode_stream_message(b"abc", None) == b"\x00\x00\x00\x00\x03abc"


# --- client: response start -------------------------------------------------------------------


def test_start_response_http_error() -> None:
    headers = CIMultiDict({"x-a": "1"})
    start = _client().start_response(503, headers, stream=False)
    assert start.headers == headers
    assert start.decoder is None
    assert start.error is not None
    assert (start.error.code, start.error.message, start.error.wire) == (
        Code.UNAVAILABLE,
        "HTTP status 503",
        True,
    )


@pytest.mark.parametrize(
    ("content_type", "code"),
    [
        (None, Code.UNKNOWN),
        ("application/json", Code.UNKNOWN),
        ("application/grpc-web+proto", Code.UNKNOWN),
        ("application/grpc+json", Code.INTERNAL),
    ],
)
def test_start_response_bad_content_type(content_type: str | None, code: Code) -> None:
    headers: CIMultiDict[str] = CIMultiDict({"x-a": "1"})
    if content_type is not None:
        headers["content-type"] = content_type
    start = _client().start_response(200, headers, stream=False)
    assert start.headers == headers
    assert start.decoder is None
    assert start.error is not None
    assert start.error.code is code
    assert start.error.message == (
        f"invalid content-type {content_type or ''!r}; expecting 'application/grpc+proto'"
    )


def test_start_response_grpc_decoder_reads_http_trailers() -> None:
    headers = CIMultiDict({"content-type": "application/grpc", "x-a": "1"})
    start = _client().start_response(200, headers, stream=False)
    assert start.error is None
    assert start.headers == headers
    decoder = start.decoder
    assert decoder is not None
    assert decoder.feed(encode_envelope(0, b"m")) == [b"m"]
    assert decoder.finish(CIMultiDict({"grpc-status": "0", "x-t": "t"})) == []
    assert decoder.error is None
    assert list(decoder.trailers.items()) == [("x-t", "t")]
    assert start.headers == headers  # a body followed: the headers stay the headers


def test_start_response_trailers_only_empties_visible_headers() -> None:
    headers = CIMultiDict(
        {"content-type": "application/grpc-web", "grpc-status": "5", "grpc-message": "nf"}
    )
    start = _client(web=True).start_response(200, headers, stream=False)
    assert start.decoder is not None
    assert start.decoder.finish() == []
    assert start.decoder.error is not None
    assert start.decoder.error.code is Code.NOT_FOUND
    assert start.decoder.error.message == "nf"
    assert len(start.headers) == 0


# --- client: response decoder -----------------------------------------------------------------


def _trailers_frame(payload: bytes) -> bytes:
    return encode_envelope(0x80, payload)


def test_decoder_initial_state() -> None:
    decoder = GrpcWebResponseDecoder(CIMultiDict(), None, True)
    assert decoder.error is None
    assert isinstance(decoder.trailers, CIMultiDict)
    assert len(decoder.trailers) == 0


def test_decoder_web_trailers_frame() -> None:
    decoder = GrpcWebResponseDecoder(CIMultiDict(), None, True)
    frame = _trailers_frame(b"grpc-status: 5\r\ngrpc-message: x\r\nX-T: t\r\n")
    assert decoder.feed(encode_envelope(0, b"a") + frame) == [b"a"]
    assert decoder.finish() == []
    assert decoder.error is not None
    assert (decoder.error.code, decoder.error.message) == (Code.NOT_FOUND, "x")
    assert list(decoder.trailers.items()) == [("x-t", "t")]
    assert list(decoder.error.metadata.items()) == [("x-t", "t")]


def test_decoder_data_after_trailers() -> None:
    decoder = GrpcWebResponseDecoder(CIMultiDict(), None, True)
    with pytest.raises(ConnectError) as info:
        decoder.feed(_trailers_frame(b"grpc-status: 0\r\n") + encode_envelope(0, b"a"))
    assert (info.value.code, info.value.message) == (
        Code.INTERNAL,
        "protocol error: received data after the trailers",
    )


def test_decoder_bad_trailers_frame() -> None:
    decoder = GrpcWebResponseDecoder(CIMultiDict(), None, True)
    with pytest.raises(ConnectError) as info:
        decoder.feed(_trailers_frame(b"bad\r\n"))
    assert (info.value.code, info.value.message) == (
        Code.INTERNAL,
        "protocol error: invalid gRPC-Web trailer line 'bad'",
    )


def test_decoder_grpc_refuses_the_web_trailers_flag() -> None:
    decoder = GrpcWebResponseDecoder(CIMultiDict(), None, False)
    with pytest.raises(ConnectError) as info:
        decoder.feed(_trailers_frame(b"grpc-status: 0\r\n"))
    assert (info.value.code, info.value.message) == (
        Code.INTERNAL,
        "protocol error: invalid envelope flags 0x80",
    )
    web = GrpcWebResponseDecoder(CIMultiDict(), None, True)
    with pytest.raises(ConnectError) as info:
        web.feed(encode_envelope(0x02, b""))
    assert (info.value.code, info.value.message) == (
        Code.INTERNAL,
        "protocol error: invalid envelope flags 0x02",
    )


def test_decoder_compression() -> None:
    plain = GrpcWebResponseDecoder(CIMultiDict(), None, True)
    with pytest.raises(ConnectError) as info:
        plain.feed(encode_envelope(1, gzip.compress(b"a")))
    assert (info.value.code, info.value.message) == (
        Code.INTERNAL,
        "protocol error: compressed message without grpc-encoding",
    )
    zipped = GrpcWebResponseDecoder(CIMultiDict({"grpc-encoding": "gzip"}), None, True)
    assert zipped.feed(encode_envelope(1, gzip.compress(b"a"))) == [b"a"]
    with pytest.raises(ConnectError) as info:
        GrpcWebResponseDecoder(CIMultiDict({"grpc-encoding": "zz"}), None, True)
    supported = ", ".join(("identity", *_compression.available()))
    assert (info.value.code, info.value.message) == (
        Code.INTERNAL,
        f"protocol error: peer used unsupported grpc-encoding 'zz' (supported: {supported})",
    )


_ENDED = "protocol error: the response ended without its trailers"


def test_decoder_missing_trailers() -> None:
    for web, trailers in ((True, None), (True, CIMultiDict({"grpc-status": "0"})), (False, None)):
        decoder = GrpcWebResponseDecoder(CIMultiDict(), None, web)
        assert decoder.feed(encode_envelope(0, b"a")) == [b"a"]
        with pytest.raises(ConnectError) as info:
            decoder.finish(trailers)
        assert (info.value.code, info.value.message) == (Code.INTERNAL, _ENDED)
    empty = GrpcWebResponseDecoder(CIMultiDict(), None, True)
    with pytest.raises(ConnectError) as info:
        empty.finish()
    assert (info.value.code, info.value.message) == (Code.INTERNAL, _ENDED)


def test_decoder_header_status_needs_an_empty_body() -> None:
    headers = CIMultiDict({"grpc-status": "5"})
    decoder = GrpcWebResponseDecoder(headers, None, True)
    assert decoder.feed(encode_envelope(0, b"a")) == [b"a"]
    with pytest.raises(ConnectError) as info:
        decoder.finish()
    assert info.value.message == _ENDED
    # An empty chunk is not a body.
    only = GrpcWebResponseDecoder(headers, None, True)
    assert only.feed(b"") == []
    assert only.finish() == []
    assert only.error is not None
    assert only.error.code is Code.NOT_FOUND


def test_decoder_trailers_only_without_visible_headers() -> None:
    headers = CIMultiDict({"grpc-status": "0", "x-h": "h"})
    decoder = GrpcWebResponseDecoder(headers, None, False)
    assert decoder.finish() == []
    assert decoder.error is None
    assert list(decoder.trailers.items()) == [("x-h", "h")]
    assert list(headers.items()) == [("grpc-status", "0"), ("x-h", "h")]


def test_decoder_refuses_data_after_finish() -> None:
    only = GrpcWebResponseDecoder(CIMultiDict({"grpc-status": "0"}), None, True)
    only.finish()
    with pytest.raises(ConnectError, match="after the trailers"):
        only.feed(encode_envelope(0, b"a"))
    grpc = GrpcWebResponseDecoder(CIMultiDict(), None, False)
    grpc.finish(CIMultiDict({"grpc-status": "0"}))
    with pytest.raises(ConnectError, match="after the trailers"):
        grpc.feed(encode_envelope(0, b"a"))


def test_decoder_incomplete_body() -> None:
    decoder = GrpcWebResponseDecoder(CIMultiDict(), None, True)
    decoder.feed(b"\x00\x00")
    with pytest.raises(ConnectError) as info:
        decoder.finish()
    assert info.value.code is Code.INTERNAL
    assert info.value.message.startswith("protocol error: stream ended ")
    grpc = GrpcWebResponseDecoder(CIMultiDict(), None, False)
    grpc.feed(b"\x00\x00\x00\x00\x02a")
    with pytest.raises(ConnectError) as info:
        grpc.finish(CIMultiDict({"grpc-status": "0"}))
    assert info.value.message == "protocol error: stream ended after 1 of 2 message bytes"


def test_decode_error_body_is_never_asked_for() -> None:
    with pytest.raises(AssertionError, match=r"^gRPC responses carry no error body$"):
        _client().decode_error_body(200, CIMultiDict(), b"", None)
