"""The simulator checks signatures exactly as Tuya documents them.

The accepted cases use Tuya's published test vectors, so they do not depend on the
simulator's own signing code being right.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest

from fwwatch.simulator import SimulatedCloud, demo_fleet

CLIENT_ID = "1KAD46OrT9HafiKdsXeg"
SECRET = "4OHBOnWOqaEC1mWXOpVL3yV50s0qGSRC"
T = "1588925778000"
NONCE = "5138cc3a9033d69856923fd07b491173"
ACCESS_TOKEN = "3f4eda2bdec17232f67c0b188af3eec1"
SIGN_A = "9E48A3E93B302EEECC803C7241985D0A34EB944F40FB573C7B5C2A82158AF13E"
SIGN_B = "AE4481C692AA80B25F3A7E12C3A5FD9BBF6251539DD78E565A1A72A508A88784"
PATH_A = "/v1.0/token"
QUERY_A = {"grant_type": "1"}
PATH_B = "/v2.0/apps/schema/users"
QUERY_B = {"page_no": "1", "page_size": "50"}


def make_cloud(secret: str = SECRET) -> SimulatedCloud:
    cloud = SimulatedCloud(
        demo_fleet(), access_id=CLIENT_ID, access_secret=secret, clock=lambda: 1588925778.0
    )
    cloud.issue_token(access_token=ACCESS_TOKEN)
    return cloud


def vector_headers(sign: str, *, business: bool) -> dict[str, str]:
    headers = {
        "client_id": CLIENT_ID,
        "t": T,
        "nonce": NONCE,
        "sign_method": "HMAC-SHA256",
        "sign": sign,
        "Signature-Headers": "area_id:call_id",
        "area_id": "29a33e8796834b1efa6",
        "call_id": "8afdb70ab2ed11eb85290242ac130003",
    }
    if business:
        headers["access_token"] = ACCESS_TOKEN
    return headers


def call(
    cloud: SimulatedCloud,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    method: str = "GET",
    body: bytes = b"",
) -> dict[str, Any]:
    answer = cloud.handle(method, path, query, headers, body)
    parsed: dict[str, Any] = json.loads(answer.body)
    return parsed


def test_vector_a_token_call_is_accepted() -> None:
    # Given a cloud with the vector's credentials and clock
    cloud = make_cloud()

    # When the token call is signed as in Tuya's vector A
    answer = call(cloud, PATH_A, QUERY_A, vector_headers(SIGN_A, business=False))

    # Then a token is granted
    assert answer["success"] is True
    assert len(answer["result"]["access_token"]) == 32


def test_vector_b_business_call_passes_signature_and_token_checks() -> None:
    # Given a cloud where the vector's access token is live
    cloud = make_cloud()

    # When the business call is signed as in Tuya's vector B
    answer = call(cloud, PATH_B, QUERY_B, vector_headers(SIGN_B, business=True))

    # Then authentication passes and only the (unsimulated) path is refused
    assert answer["code"] == 1108


def test_header_names_are_matched_case_insensitively() -> None:
    # Given the vector A headers spelt in upper case, as some HTTP stacks send them
    cloud = make_cloud()
    headers = {k.upper(): v for k, v in vector_headers(SIGN_A, business=False).items()}
    headers["Signature-Headers"] = headers.pop("SIGNATURE-HEADERS")

    # When the call is made
    answer = call(cloud, PATH_A, QUERY_A, headers)

    # Then it is accepted
    assert answer["success"] is True


def _one_char(value: str) -> str:
    last = value[-1]
    return value[:-1] + ("0" if last != "0" else "1")


Mutation = Callable[[dict[str, Any]], None]

A_MUTATIONS: dict[str, Mutation] = {
    "t": lambda r: r["headers"].update(t=_one_char(T)),
    "nonce": lambda r: r["headers"].update(nonce=_one_char(NONCE)),
    "sign": lambda r: r["headers"].update(sign=_one_char(SIGN_A)),
    "signed header value": lambda r: r["headers"].update(area_id=_one_char("29a33e8796834b1efa6")),
    "signed header list": lambda r: r["headers"].update({"Signature-Headers": "area_id"}),
    "query value": lambda r: r["query"].update(grant_type="2"),
    "query key": lambda r: r.update(query={"grant_typf": "1"}),
    "path": lambda r: r.update(path="/v1.0/tokem"),
    "method": lambda r: r.update(method="PUT"),
    "body": lambda r: r.update(body=b"x"),
    "sign case": lambda r: r["headers"].update(sign=SIGN_A.lower()),
    "sign method": lambda r: r["headers"].update(sign_method="HMAC-SHA257"),
}


@pytest.mark.parametrize("changed", list(A_MUTATIONS))
def test_a_token_call_with_one_changed_input_is_refused_as_sign_invalid(changed: str) -> None:
    # Given vector A with one input changed by one character
    cloud = make_cloud()
    request: dict[str, Any] = {
        "method": "GET",
        "path": PATH_A,
        "query": dict(QUERY_A),
        "headers": vector_headers(SIGN_A, business=False),
        "body": b"",
    }
    A_MUTATIONS[changed](request)

    # When it is sent
    answer = call(
        cloud,
        request["path"],
        request["query"],
        request["headers"],
        request["method"],
        request["body"],
    )

    # Then the signature check refuses it
    assert (answer["code"], answer["msg"]) == (1004, "sign invalid")


def test_a_wrong_secret_makes_vector_a_fail_as_sign_invalid() -> None:
    # Given a cloud whose secret differs from the vector's by one character
    cloud = make_cloud(secret=_one_char(SECRET))

    # When vector A is sent
    answer = call(cloud, PATH_A, QUERY_A, vector_headers(SIGN_A, business=False))

    # Then it is refused
    assert answer["code"] == 1004


def test_a_business_call_with_one_changed_token_character_is_refused_as_sign_invalid() -> None:
    # Given vector B with the access token header changed by one character
    cloud = make_cloud()
    headers = vector_headers(SIGN_B, business=True)
    headers["access_token"] = _one_char(ACCESS_TOKEN)

    # When it is sent
    answer = call(cloud, PATH_B, QUERY_B, headers)

    # Then the signature (which covers the token) no longer matches
    assert answer["code"] == 1004


def test_a_business_call_with_one_changed_query_value_is_refused_as_sign_invalid() -> None:
    # Given vector B with page_size changed
    cloud = make_cloud()

    # When it is sent
    answer = call(
        cloud, PATH_B, {"page_no": "1", "page_size": "51"}, vector_headers(SIGN_B, business=True)
    )

    # Then it is refused
    assert answer["code"] == 1004


def test_a_wrong_client_id_is_refused_as_client_id_invalid() -> None:
    # Given vector A sent with another client id
    cloud = make_cloud()
    headers = vector_headers(SIGN_A, business=False)
    headers["client_id"] = _one_char(CLIENT_ID)

    # When it is sent
    answer = call(cloud, PATH_A, QUERY_A, headers)

    # Then the client id check answers first
    assert (answer["code"], answer["msg"]) == (1005, "clientId invalid")


@pytest.mark.parametrize(
    "t",
    [
        str(1588925778000 - 301_000),
        str(1588925778000 + 301_000),
        "1588925778",
        "",
        "158892577800x",
    ],
    ids=["5 min early", "5 min late", "seconds", "missing", "not digits"],
)
def test_a_stale_or_malformed_t_is_refused_as_request_time_invalid(t: str) -> None:
    # Given vector A with a `t` out of the five-minute window or not 13 digits
    cloud = make_cloud()
    headers = vector_headers(SIGN_A, business=False)
    headers["t"] = t

    # When it is sent
    answer = call(cloud, PATH_A, QUERY_A, headers)

    # Then the time check refuses it before the signature is looked at
    assert (answer["code"], answer["msg"]) == (1013, "request time is invalid")


def _reference_sign(
    method: str, url: str, body: bytes, t: str, token: str = "", nonce: str = ""
) -> str:
    # Written from Tuya's description, independently of the simulator's signing module.
    digest = hashlib.sha256(body).hexdigest()
    text = f"{method}\n{digest}\n\n{url}"
    message = CLIENT_ID + token + t + nonce + text
    return hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest().upper()


def test_the_query_is_signed_decoded_and_sorted_by_key() -> None:
    # Given a query whose values hold characters a client would percent-encode
    cloud = make_cloud()
    query = {"z": "a b/c", "a": "x+y"}
    sign = _reference_sign("GET", f"{PATH_B}?a=x+y&z=a b/c", b"", T, ACCESS_TOKEN)
    headers = {
        "client_id": CLIENT_ID,
        "t": T,
        "sign_method": "HMAC-SHA256",
        "sign": sign,
        "access_token": ACCESS_TOKEN,
    }

    # When it is sent with the decoded query
    answer = call(cloud, PATH_B, query, headers)

    # Then the signature is accepted (the path itself is not simulated)
    assert answer["code"] == 1108


def test_the_body_hash_covers_the_exact_bytes_sent() -> None:
    # Given a POST whose JSON body is signed byte for byte
    cloud = make_cloud()
    body = b'{"a": 1}'
    path = "/v2.0/cloud/thing/bf7c19e4a0b2c3d4e5f601/firmware/3"
    headers = {
        "client_id": CLIENT_ID,
        "t": T,
        "sign_method": "HMAC-SHA256",
        "sign": _reference_sign("POST", path, body, T, ACCESS_TOKEN),
        "access_token": ACCESS_TOKEN,
    }

    # When the same JSON is sent serialised differently
    reserialised = call(cloud, path, {}, headers, "POST", b'{"a":1}')
    # and as signed
    exact = call(cloud, path, {}, headers, "POST", body)

    # Then only the exact bytes pass
    assert reserialised["code"] == 1004
    assert exact["success"] is True


def test_a_token_call_without_nonce_or_signed_headers_is_accepted() -> None:
    # Given a token call signed with an empty nonce and no signed headers (the official SDK)
    cloud = make_cloud()
    headers = {
        "client_id": CLIENT_ID,
        "t": T,
        "sign_method": "HMAC-SHA256",
        "sign": _reference_sign("GET", "/v1.0/token?grant_type=1", b"", T),
        "access_token": "",
    }

    # When it is sent
    answer = call(cloud, PATH_A, QUERY_A, headers)

    # Then a token is granted
    assert answer["success"] is True
