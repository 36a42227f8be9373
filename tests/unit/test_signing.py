"""Tuya's request signature, checked against the official test vectors."""

from typing import Any

import pytest

from fwwatch.tuya.signing import canonical_url, sign_request, signed_headers, string_to_sign

VECTOR: dict[str, Any] = {
    "client_id": "1KAD46OrT9HafiKdsXeg",
    "secret": "4OHBOnWOqaEC1mWXOpVL3yV50s0qGSRC",
    "t": "1588925778000",
    "nonce": "5138cc3a9033d69856923fd07b491173",
    "signed_headers": [
        ("area_id", "29a33e8796834b1efa6"),
        ("call_id", "8afdb70ab2ed11eb85290242ac130003"),
    ],
}
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_vector_a_token_call_matches_tuya() -> None:
    sign = sign_request(**VECTOR, method="GET", url=canonical_url("/v1.0/token", {"grant_type": 1}))
    assert sign == "9E48A3E93B302EEECC803C7241985D0A34EB944F40FB573C7B5C2A82158AF13E"


def test_vector_b_business_call_matches_tuya() -> None:
    sign = sign_request(
        **VECTOR,
        method="GET",
        url=canonical_url("/v2.0/apps/schema/users", {"page_size": 50, "page_no": 1}),
        access_token="3f4eda2bdec17232f67c0b188af3eec1",
    )
    assert sign == "AE4481C692AA80B25F3A7E12C3A5FD9BBF6251539DD78E565A1A72A508A88784"


@pytest.mark.parametrize(
    "change",
    [
        {"t": "1588925778001"},
        {"nonce": ""},
        {"secret": "4OHBOnWOqaEC1mWXOpVL3yV50s0qGSRc"},
        {"signed_headers": []},
    ],
)
def test_any_changed_input_changes_the_signature(change: dict[str, object]) -> None:
    params = {**VECTOR, **change}
    sign = sign_request(**params, method="GET", url="/v1.0/token?grant_type=1")
    assert sign != "9E48A3E93B302EEECC803C7241985D0A34EB944F40FB573C7B5C2A82158AF13E"


def test_query_is_sorted_by_key_and_not_percent_encoded() -> None:
    url = canonical_url("/v1.3/iot-03/devices", {"page_size": 200, "last_row_key": "a b/c"})
    assert url == "/v1.3/iot-03/devices?last_row_key=a b/c&page_size=200"


def test_url_without_query_has_no_question_mark() -> None:
    assert canonical_url("/v1.0/token", {}) == "/v1.0/token"


def test_string_to_sign_keeps_the_empty_header_line() -> None:
    text = string_to_sign("get", "/v1.0/token?grant_type=1")
    assert text == f"GET\n{EMPTY_SHA256}\n\n/v1.0/token?grant_type=1"


def test_body_hash_is_over_the_exact_bytes() -> None:
    compact = string_to_sign("POST", "/x", b'{"a":1}')
    spaced = string_to_sign("POST", "/x", b'{"a": 1}')
    assert compact != spaced


def test_the_token_calls_headers_carry_the_vectors_signature_and_no_access_token() -> None:
    url = canonical_url("/v1.0/token", {"grant_type": 1})
    headers = signed_headers(
        client_id=VECTOR["client_id"],
        secret=VECTOR["secret"],
        t=VECTOR["t"],
        nonce=VECTOR["nonce"],
        method="GET",
        url=url,
        lang="en",
    )
    assert headers["sign"] == sign_request(
        client_id=VECTOR["client_id"],
        secret=VECTOR["secret"],
        t=VECTOR["t"],
        nonce=VECTOR["nonce"],
        method="GET",
        url=url,
    )
    assert headers["sign_method"] == "HMAC-SHA256"
    assert "access_token" not in headers
    assert "Content-Type" not in headers


def test_a_business_call_with_a_body_says_its_token_and_content_type() -> None:
    common = {"client_id": "id", "secret": "s", "t": "1", "nonce": "n", "lang": "en"}
    headers = signed_headers(**common, method="POST", url="/x", body=b"{}", access_token="at")
    assert headers["access_token"] == "at"
    assert headers["Content-Type"] == "application/json"
    # the token is part of what is signed
    other = signed_headers(**common, method="POST", url="/x", body=b"{}", access_token="at2")
    assert headers["sign"] != other["sign"]
