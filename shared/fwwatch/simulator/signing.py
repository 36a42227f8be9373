"""Tuya's HMAC-SHA256 request signature, written independently of fwwatch's client.

The simulator verifies signatures with this module and the client signs with its own code,
so a conformance test between the two catches a mistake on either side.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping

EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
TOKEN_PATH = "/v1.0/token"  # noqa: S105 - a URL path, not a secret


def is_token_path(path: str) -> bool:
    """Whether `path` is one of the token calls, which are signed without an access token."""
    return path == TOKEN_PATH or path.startswith(TOKEN_PATH + "/")


def canonical_url(path: str, query: Iterable[tuple[str, str]]) -> str:
    """The URL as signed: the path, then `?` and the decoded query sorted by key, if any."""
    pairs = sorted(query)
    if not pairs:
        return path
    return path + "?" + "&".join(f"{k}={v}" for k, v in pairs)


def signed_header_lines(header_names: str, headers: Mapping[str, str]) -> str:
    """`name:value\\n` for each name listed in a Signature-Headers value (`a:b`), in order.

    `headers` must have lower-case keys; a listed header that is absent signs as empty.
    """
    if not header_names:
        return ""
    return "".join(
        f"{name}:{headers.get(name.lower(), '')}\n" for name in header_names.split(":") if name
    )


def string_to_sign(method: str, body: bytes, signed_headers: str, url: str) -> str:
    """METHOD, the body's SHA-256, the signed header lines and the URL, one per line."""
    digest = EMPTY_BODY_SHA256 if not body else hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{digest}\n{signed_headers}\n{url}"


def compute_sign(
    access_secret: str,
    *,
    client_id: str,
    t: str,
    string_to_sign: str,
    access_token: str = "",
    nonce: str = "",
) -> str:
    """Upper-case hex HMAC-SHA256 over client_id + access_token + t + nonce + stringToSign.

    Token calls pass an empty `access_token`, which gives Tuya's token-call formula.
    """
    message = f"{client_id}{access_token}{t}{nonce}{string_to_sign}"
    return hmac.new(access_secret.encode(), message.encode(), hashlib.sha256).hexdigest().upper()


def build_signed_headers(
    method: str,
    path: str,
    *,
    access_id: str,
    access_secret: str,
    t_ms: int,
    query: Mapping[str, str] | None = None,
    body: bytes = b"",
    access_token: str = "",
    nonce: str = "",
) -> dict[str, str]:
    """Headers for a correctly signed request: a convenience for tests and load scripts.

    A token path is signed without the access token even if one is given.
    """
    token = "" if is_token_path(path) else access_token
    url = canonical_url(path, (query or {}).items())
    t = str(t_ms)
    headers = {
        "client_id": access_id,
        "t": t,
        "sign_method": "HMAC-SHA256",
        "sign": compute_sign(
            access_secret,
            client_id=access_id,
            t=t,
            string_to_sign=string_to_sign(method, body, "", url),
            access_token=token,
            nonce=nonce,
        ),
    }
    if token:
        headers["access_token"] = token
    if nonce:
        headers["nonce"] = nonce
    return headers
