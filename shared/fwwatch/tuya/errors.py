"""Errors of the Tuya Cloud client: types that carry the facts a user needs.

Every error raised for an answer from Tuya keeps Tuya's ``code``, ``msg`` and ``tid``
(the trace id Tuya support asks for). The classes say what the caller should do:

- :class:`TuyaConfigError`: fix the configuration (raised before any request).
- :class:`TuyaFatalError`: stop the run; retrying cannot help (bad secret, wrong data
  centre, lapsed subscription).
- :class:`TuyaDeviceError`: this one device failed; carry on with the others.
- :class:`TuyaTransientError`: the cloud was busy, throttling or unreachable, and the
  client's bounded retries ran out; try again later.
- :class:`TuyaResponseError`: the cloud answered something the client cannot read.
"""

from __future__ import annotations

from .settings import ConfigError


class TuyaError(Exception):
    """Base of every error of the Tuya client."""

    def __init__(self, msg: str, *, code: int | None = None, tid: str | None = None) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.tid = tid

    def __str__(self) -> str:
        parts = [self.msg]
        if self.code is not None:
            parts.insert(0, f"[{self.code}]")
        if self.tid:
            parts.append(f"(tid {self.tid})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, msg={self.msg!r}, tid={self.tid!r})"

    def as_dict(self) -> dict[str, object]:
        """The error as JSON-ready facts: ``{"code", "msg", "tid"}``."""
        return {"code": self.code, "msg": self.msg, "tid": self.tid}


class TuyaConfigError(TuyaError, ConfigError):
    """The client's configuration is missing or invalid; nothing was sent.

    A :class:`~fwwatch.tuya.settings.ConfigError` like every other settings error, so that
    one ``except ConfigError`` covers them all.
    """


class InvalidDeviceIdError(TuyaError, ValueError):
    """A device ID that is not a Tuya device ID; it never reaches a URL."""


class TuyaFatalError(TuyaError):
    """An answer that no retry can fix: credentials, signing, data centre or account."""


class TuyaDeviceError(TuyaError):
    """A device-level error: it concerns one device and never stops the others.

    ``permanent`` is true when checking again later will give the same answer (the device
    does not exist or is not in the project), false when it may clear by itself (offline).
    """

    def __init__(
        self,
        msg: str,
        *,
        code: int | None = None,
        tid: str | None = None,
        device_id: str | None = None,
        permanent: bool = True,
    ) -> None:
        super().__init__(msg, code=code, tid=tid)
        self.device_id = device_id
        self.permanent = permanent


class TuyaTransientError(TuyaError):
    """Busy, throttled, timed out or unreachable, after the bounded retries ran out.

    ``retry_after_s`` is set when the source knows when trying again makes sense.
    """

    def __init__(
        self,
        msg: str,
        *,
        code: int | None = None,
        tid: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(msg, code=code, tid=tid)
        self.retry_after_s = retry_after_s


class TuyaResponseError(TuyaError):
    """An answer the client could not read (not JSON, or not Tuya's envelope)."""


class TuyaApiError(TuyaError):
    """Any other error answer of the API (kept with its code, msg and tid)."""
