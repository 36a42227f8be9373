"""Configuration of the Tuya client, read once from the environment and validated.

``TUYA_ACCESS_ID``, ``TUYA_ACCESS_SECRET``, and one of ``TUYA_ENDPOINT`` (a full URL) or
``TUYA_REGION`` (cn, us, us-e, eu, eu-w, in, sg). Optional tuning: ``TUYA_QPS``,
``TUYA_MAX_CONNECTIONS``, ``TUYA_TIMEOUT_S``, ``TUYA_RETRY_ATTEMPTS``, ``TUYA_RETRY_BUDGET_S``,
``TUYA_MAX_ANSWER_BYTES``, ``TUYA_DEVICE_LISTING``.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import TuyaConfigError

__all__ = [
    "REGIONS",
    "TuyaSettings",
    "connections_for",
    "endpoint_for_region",
    "is_loopback_host",
    "validate_endpoint",
]

#: Tuya's data centres and their OpenAPI base URLs.
REGIONS: dict[str, str] = {
    "cn": "https://openapi.tuyacn.com",
    "us": "https://openapi.tuyaus.com",
    "us-e": "https://openapi-ueaz.tuyaus.com",
    "eu": "https://openapi.tuyaeu.com",
    "eu-w": "https://openapi-weaz.tuyaeu.com",
    "in": "https://openapi.tuyain.com",
    "sg": "https://openapi-sg.iotbing.com",
}

DeviceListing = Literal["thing", "iot-03"]

#: The round trip assumed when sizing connections from the rate: Tuya's answers across
#: continents take 100-300 ms.
ASSUMED_LATENCY_S = 0.25


def connections_for(qps: float) -> int:
    """Connections that let ``qps`` requests a second flow at the assumed latency (16-256)."""
    return max(16, min(256, math.ceil(qps * ASSUMED_LATENCY_S)))


def endpoint_for_region(region: str) -> str:
    """The base URL of a data centre, or a :class:`TuyaConfigError` naming the choices."""
    try:
        return REGIONS[region.strip().lower()]
    except KeyError:
        choices = ", ".join(REGIONS)
        raise TuyaConfigError(
            f"TUYA_REGION={region!r} is not a Tuya data centre; use one of: {choices}"
        ) from None


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_endpoint(url: str, *, variable: str = "TUYA_ENDPOINT") -> str:
    """Check an endpoint URL: https anywhere, plain http only on a loopback address."""
    parts = urlsplit(url.strip())
    if "@" in parts.netloc:
        # Checked first, so that no message below ever echoes a password.
        raise TuyaConfigError(f"{variable} must not hold credentials (user:password@)")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise TuyaConfigError(
            f"{variable}={url!r} is not a URL; expected e.g. https://openapi.tuyaeu.com"
        )
    if parts.query or parts.fragment:
        raise TuyaConfigError(
            f"{variable} must be a plain base URL (scheme, host and port), without "
            "credentials, query or fragment"
        )
    if parts.path not in ("", "/"):
        raise TuyaConfigError(
            f"{variable}={url!r} has a path; give only the base URL, e.g. https://openapi.tuyaeu.com"
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise TuyaConfigError(
            f"{variable}={url!r} uses plain http to a non-loopback host; Tuya credentials "
            "travel only over https (plain http is accepted for a local simulator on "
            "127.0.0.1/localhost only)"
        )
    return f"{parts.scheme}://{parts.netloc}"


class TuyaSettings(BaseSettings):
    """Everything the client needs, from ``TUYA_*`` environment variables (or arguments)."""

    model_config = SettingsConfigDict(env_prefix="TUYA_", extra="ignore", frozen=True)

    access_id: str = Field(min_length=1, description="The cloud project's Access ID.")
    access_secret: SecretStr = Field(description="The cloud project's Access Secret.")
    endpoint: str | None = Field(default=None, description="Full base URL of the data centre.")
    region: str | None = Field(default=None, description="Data centre: " + ", ".join(REGIONS))
    qps: float = Field(default=20.0, gt=0, le=100_000, description="Ceiling on requests/second.")
    max_connections: int | None = Field(
        default=None, ge=1, le=256, description="Connections (default: from TUYA_QPS)."
    )
    timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="Seconds for one whole answer, connect to last byte.",
    )
    retry_attempts: int = Field(
        default=8, ge=1, le=50, description="Tries per call before it fails as transient."
    )
    retry_budget_s: float = Field(
        default=30.0, gt=0, le=3600, description="Seconds per call for its retries."
    )
    max_answer_bytes: int = Field(
        default=8 * 2**20, ge=64 * 1024, le=2**30, description="Cap on an answer's decoded size."
    )
    device_listing: DeviceListing = "thing"
    source_type: str | None = None
    source_id: str | None = None
    lang: str = "en"

    @field_validator("access_id")
    @classmethod
    def _strip_id(cls, value: str) -> str:
        value = value.strip()
        if not value or not value.isascii() or not value.isprintable():
            raise ValueError("must be the project's Access ID (printable ASCII)")
        return value

    @field_validator("access_secret")
    @classmethod
    def _check_secret(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value().strip()
        if not raw:
            raise ValueError("must not be empty")
        return SecretStr(raw)

    @model_validator(mode="after")
    def _resolve_endpoint(self) -> TuyaSettings:
        if self.endpoint:
            object.__setattr__(self, "endpoint", validate_endpoint(self.endpoint))
        elif self.region:
            object.__setattr__(self, "endpoint", endpoint_for_region(self.region))
        else:
            raise ValueError(
                "set TUYA_ENDPOINT (a full URL) or TUYA_REGION (" + ", ".join(REGIONS) + ")"
            )
        return self

    @property
    def connections(self) -> int:
        """Connections (and requests in flight): ``TUYA_MAX_CONNECTIONS``, or from the rate."""
        return self.max_connections or connections_for(self.qps)

    @property
    def base_url(self) -> str:
        """The resolved endpoint (validated; never ``None`` after construction)."""
        assert self.endpoint is not None
        return self.endpoint

    @property
    def region_label(self) -> str:
        """How to name the configured data centre in messages."""
        if self.region:
            return f"TUYA_REGION={self.region}"
        return f"TUYA_ENDPOINT={self.endpoint}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TuyaSettings:
        """Read and validate the settings, or raise :class:`TuyaConfigError` naming the variable."""
        try:
            if environ is None:
                return cls()
            values = {
                key[len("TUYA_") :].lower(): value
                for key, value in environ.items()
                if key.startswith("TUYA_") and value != ""
            }
            return cls.model_validate(values)
        except TuyaConfigError:
            raise
        except ValidationError as exc:
            raise TuyaConfigError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, naming the environment variable (never echoing secrets)."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(part) for part in error["loc"])
        variable = f"TUYA_{loc.upper()}" if loc else "TUYA_ENDPOINT/TUYA_REGION"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is not set"
        if error["type"] == "assertion_error" or not loc:
            lines.append(message)
        else:
            lines.append(f"{variable} {message}")
    return "; ".join(lines)
