"""Reading Tuya's answers: the envelope every answer comes in, and the error a coded one is.

What a code means comes from :mod:`fwwatch.tuya.codes`; this module adds what the call it
answered changes about that (a grant, a refresh, a device's own call).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from .codes import GRANT_REFUSALS, GRANT_REFUSED, Kind, Meaning, meaning_of
from .config import TuyaSettings
from .errors import TuyaApiError, TuyaDeviceError, TuyaError, TuyaFatalError, TuyaResponseError

__all__ = [
    "GRANT_PATH",
    "Envelope",
    "decode",
    "error_for",
    "fatal_error",
    "is_device_path",
    "redact",
    "retry_after",
]

#: The grant call; a refresh is ``GRANT_PATH/<refresh token>``.
GRANT_PATH = "/v1.0/token"

_REFRESH_PATH = re.compile(r"/v1\.0/token/[^/?\s\"]+")


def redact(text: str) -> str:
    """Hide refresh tokens that travel in the path of the refresh call."""
    return _REFRESH_PATH.sub("/v1.0/token/<redacted>", text)


def is_device_path(path: str) -> bool:
    """A call about one device (its firmware), as opposed to a token or a listing call."""
    return path.startswith("/v2.0/cloud/thing/") and path != "/v2.0/cloud/thing/device"


@dataclass(frozen=True, slots=True)
class Envelope:
    """Tuya's envelope around every answer: a result, or a code and a message."""

    success: bool
    result: Any
    code: int | None
    msg: str
    t: int | None
    tid: str | None

    @property
    def meaning(self) -> Meaning:
        """What the answer's code means to the client."""
        return meaning_of(self.code)

    def coded(self) -> str:
        """The code and message, as retry logs and give-up errors show them."""
        return f"[{self.code}] {self.msg}"


def decode(response: httpx.Response) -> Envelope:
    """The envelope of an HTTP answer, or :class:`TuyaResponseError` when there is none."""
    try:
        payload = response.json()
    except (ValueError, RecursionError):  # not JSON, not UTF-8, too deep, too long a number
        raise TuyaResponseError(
            f"HTTP {response.status_code}: the answer is not JSON ({len(response.content)} bytes)"
        ) from None
    if not isinstance(payload, dict) or "success" not in payload:
        raise TuyaResponseError(f"HTTP {response.status_code}: the answer is not Tuya's envelope")
    tid = payload.get("tid")
    tid = str(tid) if tid is not None else None
    t = payload.get("t")
    # A server time is 13 digits of milliseconds; anything else cannot correct a clock.
    t = t if isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 10**15 else None
    if payload.get("success") is True:
        if "result" not in payload:
            raise TuyaResponseError(
                f"HTTP {response.status_code}: a success answer without a result", tid=tid
            )
        return Envelope(True, payload["result"], None, "", t, tid)
    raw_code = payload.get("code", payload.get("error_code"))
    try:
        code = int(raw_code) if raw_code is not None else None
    except (TypeError, ValueError, OverflowError):
        code = None
    msg = payload.get("msg", payload.get("error_msg")) or "no message"
    return Envelope(False, None, code, str(msg), t, tid)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks to wait (``Retry-After``), or ``None``."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_for(envelope: Envelope, path: str, settings: TuyaSettings) -> TuyaError:
    """The error a coded answer to ``path`` stands for.

    Token rejections of business calls, clock, throttling and busy answers are dealt with
    (retried) before an answer gets here.
    """
    code, msg, tid = envelope.code, envelope.msg, envelope.tid
    if path == GRANT_PATH and code in GRANT_REFUSALS:
        # The grant itself refused (throttling was retried before getting here): the
        # project cannot take tokens, so nothing else can work either.
        return fatal_error(envelope, path, settings, GRANT_REFUSED)
    meaning = envelope.meaning
    # A refused refresh is one more reason to take a grant, never the end of the run.
    refresh = path.startswith(GRANT_PATH + "/")
    if meaning.kind is Kind.PERMISSION and not is_device_path(path) and not refresh:
        return fatal_error(envelope, path, settings)
    if meaning.kind is Kind.FATAL:
        return fatal_error(envelope, path, settings)
    if meaning.kind in (Kind.DEVICE, Kind.PERMISSION):
        return TuyaDeviceError(
            f"{msg} ({meaning.hint})", code=code, tid=tid, permanent=meaning.permanent
        )
    if path.startswith(GRANT_PATH) and meaning.kind is Kind.TOKEN_REJECTED:
        # The refresh token itself was refused.
        return TuyaApiError(f"token call refused: {msg}", code=code, tid=tid)
    return TuyaApiError(f"{redact(path)}: {msg}", code=code, tid=tid)


def fatal_error(
    envelope: Envelope, path: str, settings: TuyaSettings, meaning: Meaning | None = None
) -> TuyaFatalError:
    """The run-ending error of an answer, worded by the table: what went wrong, and the fix.

    ``meaning`` defaults to the meaning of the answer's code.
    """
    meaning = meaning or envelope.meaning
    text = meaning.explain(
        envelope.msg, path=redact(path), access_id=settings.access_id, region=settings.region_label
    )
    return TuyaFatalError(text, code=envelope.code, tid=envelope.tid)
