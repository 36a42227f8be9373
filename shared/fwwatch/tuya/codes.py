"""What each of Tuya's error codes means to the client: one table, and the client reads only it.

Tuya answers an error with ``success: false`` and a number. What the client does with the
answer follows from the code's :class:`Kind`, with two rules that depend on the call too:

- 1106 (permission denied) on a device's own call concerns that device only; on any other
  call it means the project lacks the API, which stops the run.
- On the grant call itself, any 11xx refusal that is left after the retries (throttling and
  busy answers are retried) means the project cannot take tokens: :data:`GRANT_REFUSED`.

Codes missing from the table are :attr:`Kind.UNLISTED`: raised with their code and message
as :class:`~fwwatch.tuya.errors.TuyaApiError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, auto
from types import MappingProxyType

__all__ = ["CODES", "GRANT_REFUSALS", "GRANT_REFUSED", "Kind", "Meaning", "meaning_of"]


class Kind(Enum):
    """What the client does about an answer with a code of this kind."""

    #: Take a new token and try again. Never fatal: another process may have taken a grant.
    TOKEN_REJECTED = auto()
    #: Correct the request time by the server's clock and try again.
    CLOCK_SKEW = auto()
    #: Slow the request rate down and try again.
    THROTTLED = auto()
    #: Try again after a backoff.
    BUSY = auto()
    #: Stop the run: credentials, data centre or account; the error names the fix.
    FATAL = auto()
    #: That one device failed; the others carry on.
    DEVICE = auto()
    #: That device on its own call; on any other call the project lacks the API (fatal).
    PERMISSION = auto()
    #: Not in the table: an API error with its code and message.
    UNLISTED = auto()


@dataclass(frozen=True, slots=True)
class Meaning:
    """What one code means to the client, and the words its error is raised with.

    ``problem`` and ``fix`` make the text of a fatal error (:attr:`Kind.FATAL`, a
    :attr:`Kind.PERMISSION` refusal of the project, a clock that cannot be corrected):
    ``problem`` ends with its own punctuation and may quote Tuya's message as ``{msg}``;
    both may name ``{path}``, ``{access_id}`` and ``{region}`` (the configured data centre).
    ``hint`` and ``permanent`` are a device error's: why the device failed, and whether
    checking it again later gives the same answer.
    """

    kind: Kind
    problem: str = ""
    fix: str = ""
    hint: str = ""
    permanent: bool = True

    def explain(self, msg: str, *, path: str, access_id: str, region: str) -> str:
        """The fatal error's text: what went wrong, then what to do about it."""
        # Only the table's own text is a format string: Tuya's message is a value in it.
        return f"{self.problem} {self.fix}".format(
            msg=msg, path=path, access_id=access_id, region=region
        )


_TOKEN_REJECTED = Meaning(Kind.TOKEN_REJECTED)
_THROTTLED = Meaning(Kind.THROTTLED)
_BUSY = Meaning(Kind.BUSY)
_WRONG_DATA_CENTRE = Meaning(
    Kind.FATAL,
    problem="wrong data centre ({msg}):",
    fix="the project is not served at {region}; set TUYA_REGION to the data centre shown in "
    "the cloud project's overview (cn, us, us-e, eu, eu-w, in, sg)",
)

#: Every code the client knows, and what it means.
CODES: Mapping[int, Meaning] = MappingProxyType(
    {
        500: _BUSY,
        1001: Meaning(
            Kind.FATAL, problem="secret invalid ({msg}):", fix="check TUYA_ACCESS_SECRET"
        ),
        1004: Meaning(
            Kind.FATAL,
            problem="sign invalid ({msg}):",
            fix="TUYA_ACCESS_SECRET does not belong to TUYA_ACCESS_ID {access_id!r}; copy both "
            "again from the cloud project's overview",
        ),
        1005: Meaning(
            Kind.FATAL,
            problem="client id invalid ({msg}):",
            fix="check TUYA_ACCESS_ID ({access_id!r}) and the data centre ({region})",
        ),
        1010: _TOKEN_REJECTED,
        1011: _TOKEN_REJECTED,
        1012: _TOKEN_REJECTED,
        # Fatal only when the server gives no time to correct the clock by (or keeps
        # refusing the corrected one).
        1013: Meaning(
            Kind.CLOCK_SKEW,
            problem="the cloud rejects this machine's clock (request time invalid) and gave no "
            "time to correct it by;",
            fix="check the system clock (NTP)",
        ),
        1106: Meaning(
            Kind.PERMISSION,
            problem="permission denied on {path} ({msg}):",
            fix="the cloud project lacks this API's permission, or lives in another data "
            "centre than {region}; authorise the API (IoT Core) for the project",
            hint="not in this cloud project, or the project is in another data centre",
        ),
        1110: _THROTTLED,
        1111: _THROTTLED,
        1112: _BUSY,
        1199: _THROTTLED,
        1400: _TOKEN_REJECTED,
        2001: Meaning(Kind.DEVICE, hint="checked again next time", permanent=False),
        2007: _WRONG_DATA_CENTRE,
        2009: Meaning(Kind.DEVICE, hint="the device does not support this API"),
        2010: Meaning(Kind.DEVICE, hint="no such device"),
        2406: _WRONG_DATA_CENTRE,
        28841002: Meaning(
            Kind.FATAL,
            problem="the cloud project's subscription has expired ({msg});",
            fix="renew the IoT Core service on the Tuya platform, then run again",
        ),
        28841004: Meaning(
            Kind.FATAL,
            problem="the API call quota of this project is used up ({msg});",
            fix="wait for it to reset or upgrade the plan, and check less often",
        ),
        28841105: Meaning(
            Kind.FATAL,
            problem="this API is not authorised for the cloud project ({msg});",
            fix="subscribe the project to the service that provides it and authorise the API "
            "on the Tuya platform",
        ),
        28841107: _WRONG_DATA_CENTRE,
    }
)

#: Refusals of the grant call that mean the project cannot take tokens at all.
GRANT_REFUSALS = range(1100, 1200)
#: What such a refusal means: nothing else can work either.
GRANT_REFUSED = Meaning(
    Kind.FATAL,
    problem="the cloud refuses this project a token ({msg}):",
    fix="check that the cloud project of TUYA_ACCESS_ID {access_id!r} is active and lives in "
    "{region}, and that its API services are authorised",
)

_UNLISTED = Meaning(Kind.UNLISTED)


def meaning_of(code: int | None) -> Meaning:
    """What ``code`` means to the client; :attr:`Kind.UNLISTED` for a code not in the table."""
    if code is None:
        return _UNLISTED
    return CODES.get(code, _UNLISTED)
