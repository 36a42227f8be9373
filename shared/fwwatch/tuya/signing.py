"""Tuya's HMAC-SHA256 request signature (the algorithm for projects created after mid-2021).

stringToSign = METHOD \\n sha256_hex(body) \\n signed_headers \\n url
token calls:   message = client_id + t + nonce + stringToSign
other calls:   message = client_id + access_token + t + nonce + stringToSign
sign = upper(hex(HMAC_SHA256(access_secret, message)))
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

__all__ = ["canonical_url", "sign_request", "signed_headers", "string_to_sign"]


def canonical_url(path: str, query: Mapping[str, object] | None = None) -> str:
    """The URL as Tuya signs it: the path, then the query sorted by key, values not escaped."""
    if not query:
        return path
    pairs = "&".join(f"{key}={query[key]}" for key in sorted(query))
    return f"{path}?{pairs}"


def string_to_sign(
    method: str,
    url: str,
    body: bytes = b"",
    signed_headers: Sequence[tuple[str, str]] = (),
) -> str:
    """The canonical request: method, body hash, signed header lines and URL."""
    body_hash = hashlib.sha256(body).hexdigest()
    header_lines = "".join(f"{name}:{value}\n" for name, value in signed_headers)
    return f"{method.upper()}\n{body_hash}\n{header_lines}\n{url}"


def sign_request(
    *,
    client_id: str,
    secret: str,
    t: str,
    method: str,
    url: str,
    body: bytes = b"",
    access_token: str = "",
    nonce: str = "",
    signed_headers: Sequence[tuple[str, str]] = (),
) -> str:
    """Sign one request. ``access_token`` is empty for the token calls themselves."""
    message = client_id + access_token + t + nonce
    message += string_to_sign(method, url, body, signed_headers)
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return digest.upper()


def signed_headers(
    *,
    client_id: str,
    secret: str,
    t: str,
    nonce: str,
    method: str,
    url: str,
    body: bytes = b"",
    access_token: str | None = None,
    lang: str,
) -> dict[str, str]:
    """The headers of a signed request; ``access_token`` is ``None`` for the token calls."""
    sign = sign_request(
        client_id=client_id,
        secret=secret,
        t=t,
        method=method,
        url=url,
        body=body,
        access_token=access_token or "",
        nonce=nonce,
    )
    headers = {
        "client_id": client_id,
        "t": t,
        "nonce": nonce,
        "sign_method": "HMAC-SHA256",
        "sign": sign,
        "lang": lang,
    }
    if body:
        headers["Content-Type"] = "application/json"
    if access_token is not None:
        headers["access_token"] = access_token
    return headers
