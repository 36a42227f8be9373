"""Configuration of the Tuya client: :class:`TuyaSettings`, read once from ``TUYA_*`` variables.

Also the bounds that the local mode and the AWS functions share (requests per second,
retries, timeouts, re-checks), each declared once here as an ``Annotated`` type, so that
the CLI, the functions and template.yaml cannot disagree about them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from .errors import TuyaConfigError
from .settings import HELP_DEFAULT, ConfigError, EnvSettings, env_prefix, is_loopback_host

__all__ = [
    "REGIONS",
    "CheckAttempts",
    "ProjectRequestsPerSecond",
    "RecheckDelaySeconds",
    "RequestsPerSecond",
    "RetryAttempts",
    "RetryBudgetSeconds",
    "TimeoutSeconds",
    "TuyaSettings",
    "connections_for",
    "endpoint_for_region",
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

# ---------------------------------------------------------------- bounds shared with AWS
# The upper bound of the rate is far above any Tuya quota: the client finds the real limit
# itself (it backs off on 1110 and 429), and runs against the simulator need no ceiling.

_RATE_HELP = (
    "ceiling on requests per second; a run starts lower and finds the cloud's real limit, "
    "kept for the next run"
)
#: The client's rate: any positive number (a checker's share of the project's rate may be
#: under one request a second).
RequestsPerSecond = Annotated[float, Field(gt=0, le=100_000, description=_RATE_HELP)]
#: The project's rate as a template parameter sets it (CloudFormation bounds are inclusive).
ProjectRequestsPerSecond = Annotated[float, Field(ge=1, le=100_000, description=_RATE_HELP)]
TimeoutSeconds = Annotated[
    float,
    Field(gt=0, le=120, description="seconds for one whole answer, connect to last byte"),
]
RetryAttempts = Annotated[
    int,
    Field(ge=1, le=50, description='tries per call before a device is "not checked"'),
]
RetryBudgetSeconds = Annotated[
    float,
    Field(gt=0, le=3600, description="seconds per call for its retries: no retry starts past it"),
]
CheckAttempts = Annotated[
    int,
    Field(
        ge=1,
        le=10,
        description="checks of a device that fails transiently before it is reported not checked",
    ),
]
# 900 s: the longest delay SQS gives a message, and the checker's re-checks are such messages.
RecheckDelaySeconds = Annotated[
    int,
    Field(
        ge=0,
        le=900,
        description="seconds before the first re-check of a device that failed transiently; "
        "doubles each time",
    ),
]


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


class TuyaSettings(EnvSettings):
    """Everything the client needs, from ``TUYA_*`` environment variables (or arguments).

    ``TuyaSettings.load()`` reads the variables; ``TuyaSettings(access_id=..., ...)`` takes
    arguments. Either raises :class:`TuyaConfigError` naming what is wrong.
    """

    model_config = env_prefix("TUYA_")
    config_error: ClassVar[type[ConfigError]] = TuyaConfigError

    access_id: str = Field(min_length=1, description="the cloud project's Access ID")
    access_secret: SecretStr = Field(description="the cloud project's Access Secret")
    region: str | None = Field(default=None, description="data centre: " + ", ".join(REGIONS))
    endpoint: str | None = Field(
        default=None,
        description="or a full base URL instead of TUYA_REGION (plain http only to "
        "127.0.0.1/localhost, for a simulator)",
    )
    qps: RequestsPerSecond = 20.0
    max_connections: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="requests in flight (default: from TUYA_QPS, 16 to 256)",
    )
    timeout_s: TimeoutSeconds = 10.0
    retry_attempts: RetryAttempts = 8
    retry_budget_s: RetryBudgetSeconds = 30.0
    max_answer_bytes: int = Field(
        default=8 * 2**20,
        ge=64 * 1024,
        le=2**30,
        description="cap on an answer's decoded size",
        json_schema_extra={HELP_DEFAULT: "8 MiB"},
    )
    device_listing: DeviceListing = Field(
        default="thing", description="how to list devices: thing or iot-03"
    )
    source_type: str | None = Field(
        default=None, description="with TUYA_DEVICE_LISTING=iot-03: the listing's source_type"
    )
    source_id: str | None = Field(
        default=None, description="with TUYA_DEVICE_LISTING=iot-03: the listing's source_id"
    )
    lang: str = Field(default="en", description="language of Tuya's answers")

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
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The same as :meth:`load`: the settings from ``environ`` (the process's by default)."""
        return cls.load(environ)
