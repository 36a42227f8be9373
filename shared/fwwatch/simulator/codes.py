"""Tuya Cloud error codes and the messages Tuya's servers send with them."""

from __future__ import annotations

from typing import Final

SYSTEM_ERROR: Final = 500
GRANT_TYPE_INVALID: Final = 1003
SIGN_INVALID: Final = 1004
CLIENT_ID_INVALID: Final = 1005
TOKEN_INVALID: Final = 1010
TOKEN_STATUS_INVALID: Final = 1012
REQUEST_TIME_INVALID: Final = 1013
PERMISSION_DENY: Final = 1106
URI_PATH_INVALID: Final = 1108
PARAM_ILLEGAL: Final = 1109
CONCURRENT_OVER_LIMIT: Final = 1110
DEVICE_OFFLINE: Final = 2001

# Real Tuya wording, so a client's logs read the same against the simulator as in production.
# Tuya's global table gives 1010 as "token is expired", but its servers answer an unknown or
# revoked token with 1010 "token invalid"; the simulator uses both, depending on the cause.
MESSAGES: Final[dict[int, str]] = {
    500: "system error, please contact the admin",
    1000: "data not exist",
    1001: "secret invalid",
    1002: "access_token is null",
    1003: "grant type invalid",
    1004: "sign invalid",
    1005: "clientId invalid",
    1010: "token invalid",
    1011: "token invalid",
    1012: "token status is invalid",
    1013: "request time is invalid",
    1100: "param is empty",
    1101: "params range invalid",
    1105: "missing the header",
    1106: "permission deny",
    1108: "uri path invalid",
    1109: "param is illegal, please check it",
    1110: "concurrent request over limit",
    1111: "system is busy, please try again later",
    1112: "data is syncing, please try again later",
    1199: "your requests are too frequent",
    1400: "token invalid",
    2001: "device is offline",
    2007: "device token expired",
    2009: "not support this device",
    2010: "device not exist",
    2406: "cross-region access is not allowed",
    28841002: "subscription expired",
    28841004: "the API call quota of the trial edition has been used up",
    28841105: "no permissions. This API is not subscribed",
    28841107: "data center suspended",
}

TOKEN_EXPIRED_MSG: Final = "token is expired"  # noqa: S105 - a message, not a secret


def message_for(code: int) -> str:
    """Return Tuya's message for `code`, or a generic one for codes the table lacks."""
    return MESSAGES.get(code, "error")
