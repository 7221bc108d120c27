"""The CORS policy: preflight answers and the headers of actual responses."""

from __future__ import annotations

import pytest

from connectrpc.cors import ALLOWED_HEADERS, EXPOSED_HEADERS, CORSPolicy

APP = "https://app.example.com"


def preflight_headers(
    origin: str = APP, method: str = "POST", headers: str = "content-type"
) -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": method,
        "access-control-request-headers": headers,
    }


def as_dict(headers: list[tuple[str, str]]) -> dict[str, str]:
    return dict(headers)


def listed(value: str) -> set[str]:
    return {h.strip().lower() for h in value.split(",")}


def test_preflight_allows_what_connect_and_grpc_web_send() -> None:
    policy = CORSPolicy(allow_origins=[APP])
    asked = (
        "content-type,connect-protocol-version,connect-timeout-ms,x-grpc-web,x-user-agent,"
        "grpc-timeout,connect-content-encoding,connect-accept-encoding"
    )
    answer = policy.preflight(preflight_headers(headers=asked))
    assert answer.status == 204
    headers = as_dict(answer.headers)
    assert headers["access-control-allow-origin"] == APP
    assert listed(headers["access-control-allow-methods"]) == {"get", "post"}
    assert listed(asked) <= listed(headers["access-control-allow-headers"])
    assert headers["access-control-max-age"] == "7200"
    assert "origin" in listed(headers["vary"])
    assert "access-control-allow-credentials" not in headers


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_preflight_allows_get_and_post(method: str) -> None:
    policy = CORSPolicy(allow_origins=[APP])
    assert policy.preflight(preflight_headers(method=method)).status == 204


def test_preflight_refuses_another_origin_and_names_the_fix() -> None:
    policy = CORSPolicy(allow_origins=[APP])
    answer = policy.preflight(preflight_headers(origin="https://evil.example"))
    assert answer.status == 403
    assert not any(k.startswith("access-control-") for k, _ in answer.headers)
    assert "https://evil.example" in answer.body
    assert "allow_origins" in answer.body


def test_preflight_refuses_other_methods() -> None:
    answer = CORSPolicy(allow_origins=[APP]).preflight(preflight_headers(method="PUT"))
    assert answer.status == 403
    assert "PUT" in answer.body


def test_preflight_refuses_unknown_request_headers_and_names_them() -> None:
    policy = CORSPolicy(allow_origins=[APP])
    answer = policy.preflight(preflight_headers(headers="content-type, x-request-id"))
    assert answer.status == 403
    assert "x-request-id" in answer.body
    assert "allow_headers" in answer.body


def test_own_request_headers_are_allowed_when_configured() -> None:
    policy = CORSPolicy(allow_origins=[APP], allow_headers=["X-Request-Id"])
    answer = policy.preflight(preflight_headers(headers="content-type, x-request-id"))
    assert answer.status == 204
    assert "x-request-id" in listed(as_dict(answer.headers)["access-control-allow-headers"])


def test_any_request_header_echoes_what_was_asked() -> None:
    policy = CORSPolicy(allow_origins=[APP], allow_headers=["*"])
    answer = policy.preflight(preflight_headers(headers="x-anything"))
    assert answer.status == 204
    allowed = listed(as_dict(answer.headers)["access-control-allow-headers"])
    assert "x-anything" in allowed
    assert {h.lower() for h in ALLOWED_HEADERS} <= allowed


def test_any_origin() -> None:
    policy = CORSPolicy(allow_origins=["*"])
    answer = policy.preflight(preflight_headers(origin="http://localhost:5173"))
    assert answer.status == 204
    assert as_dict(answer.headers)["access-control-allow-origin"] == "http://localhost:5173"


def test_origins_compare_case_insensitively() -> None:
    policy = CORSPolicy(allow_origins=["https://App.Example.com"])
    assert policy.allows_origin(APP)
    assert not policy.allows_origin("https://app.example.com:8443")


def test_credentials() -> None:
    policy = CORSPolicy(allow_origins=[APP], allow_credentials=True)
    headers = as_dict(policy.preflight(preflight_headers()).headers)
    assert headers["access-control-allow-credentials"] == "true"
    assert as_dict(policy.response_headers(APP))["access-control-allow-credentials"] == "true"


def test_credentials_with_any_origin_is_refused() -> None:
    with pytest.raises(ValueError, match="list the origins"):
        CORSPolicy(allow_origins=["*"], allow_credentials=True)


@pytest.mark.parametrize(
    "origin",
    ["https://app.example.com/", "app.example.com", "https://app.example.com/path", "ftp://x"],
)
def test_a_non_origin_is_refused_with_the_right_form(origin: str) -> None:
    with pytest.raises(ValueError, match="scheme://host"):
        CORSPolicy(allow_origins=[origin])


def test_configuration_mistakes_are_named() -> None:
    with pytest.raises(TypeError, match="list of origins"):
        CORSPolicy(allow_origins=APP)
    with pytest.raises(ValueError, match="empty"):
        CORSPolicy(allow_origins=[])
    with pytest.raises(ValueError, match="header name"):
        CORSPolicy(allow_origins=[APP], expose_headers=["x-a, x-b"])


def test_actual_responses_expose_protocol_and_own_headers_and_trailers() -> None:
    policy = CORSPolicy(allow_origins=[APP], expose_headers=["eliza-version"])
    headers = as_dict(policy.response_headers(APP))
    assert headers["access-control-allow-origin"] == APP
    exposed = listed(headers["access-control-expose-headers"])
    assert {h.lower() for h in EXPOSED_HEADERS} <= exposed
    assert {"grpc-status", "grpc-message", "grpc-status-details-bin"} <= exposed
    assert {"connect-content-encoding", "content-encoding"} <= exposed
    # Connect unary responses carry trailers as Trailer- headers.
    assert {"eliza-version", "trailer-eliza-version"} <= exposed
    assert headers["vary"] == "Origin"


@pytest.mark.parametrize("origin", [None, "https://evil.example"])
def test_actual_responses_to_others_carry_no_cors_headers(origin: str | None) -> None:
    headers = CORSPolicy(allow_origins=[APP]).response_headers(origin)
    assert headers == [("vary", "Origin")]


def test_is_preflight() -> None:
    assert CORSPolicy.is_preflight("OPTIONS", preflight_headers())
    assert not CORSPolicy.is_preflight("OPTIONS", {"origin": APP})
    assert not CORSPolicy.is_preflight("POST", preflight_headers())
