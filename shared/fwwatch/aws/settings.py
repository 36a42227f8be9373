"""Each function's configuration: one pydantic model, read once at cold start.

Secrets are never in the environment: only the names of the Secrets Manager secrets are,
and the values are read through Powertools Parameters (cached).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..tuya import TuyaConfigError, TuyaSettings

__all__ = [
    "CheckerSettings",
    "DifferSettings",
    "FunctionConfigError",
    "SchedulerSettings",
    "SlackSettings",
    "TuyaAccessSettings",
    "load",
    "tuya_settings_from_secret",
]


class FunctionConfigError(RuntimeError):
    """A function's environment is incomplete; the message names the variable."""


class _Base(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True, case_sensitive=False)


class TuyaAccessSettings(_Base):
    """What every function that calls Tuya needs: the endpoint, the secret's name, the token."""

    tuya_endpoint: str
    tuya_secret_name: str = Field(min_length=1)
    tuya_qps: float = Field(default=20.0, gt=0)
    tuya_retry_attempts: int = Field(default=8, ge=1, le=50)
    tuya_retry_budget_s: float = Field(default=30.0, gt=0, le=600)
    tuya_timeout_s: float = Field(default=10.0, gt=0, le=120)
    control_table: str = Field(min_length=1)


class SchedulerSettings(TuyaAccessSettings):
    """The scheduler: where to send device IDs, and which."""

    check_queue_url: str
    device_ids: str = ""
    devices_per_message: int = Field(default=100, ge=1, le=500)

    @property
    def configured_ids(self) -> list[str]:
        """The ``DeviceIds`` parameter as a list (empty: discover every device)."""
        return [part.strip() for part in self.device_ids.split(",") if part.strip()]


class CheckerSettings(TuyaAccessSettings):
    """The checker: the state table, retries, and its share of the rate limit."""

    state_table: str
    check_queue_url: str
    check_dead_letter_queue_url: str
    check_concurrency: int = Field(default=16, ge=1, le=256)
    checker_max_concurrency: int = Field(default=1, ge=1)
    max_attempts: int = Field(default=3, ge=1, le=10)
    retry_delay_s: int = Field(default=30, ge=0, le=900)

    @property
    def qps_per_instance(self) -> float:
        """Tuya's ceiling is per project: each concurrent instance takes its share."""
        return self.tuya_qps / self.checker_max_concurrency


class DifferSettings(_Base):
    """The differ: where news goes, and whether a first sighting is news."""

    control_table: str
    topic_arn: str
    notify_on_first_seen: bool = False


class SlackSettings(_Base):
    """The Slack function: which secret holds the webhook URL."""

    slack_webhook_secret_name: str = Field(min_length=1)


def load[T: _Base](model: type[T], environ: dict[str, str] | None = None) -> T:
    """Read a settings model (from ``environ`` when given), naming missing variables."""
    try:
        if environ is None:
            return model()
        return model.model_validate({key.lower(): value for key, value in environ.items()})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise FunctionConfigError(f"function configuration: {problems}") from None


def tuya_settings_from_secret(
    secret: Any,
    *,
    endpoint: str,
    qps: float,
    max_connections: int | None = None,
    retry_attempts: int = 8,
    retry_budget_s: float = 30.0,
    timeout_s: float = 10.0,
) -> TuyaSettings:
    """Tuya settings from the secret's JSON value ``{"access_id", "access_secret"}``."""
    if (
        not isinstance(secret, dict)
        or not secret.get("access_id")
        or not secret.get("access_secret")
    ):
        raise TuyaConfigError(
            "the Tuya secret must be JSON with access_id and access_secret "
            '(aws secretsmanager create-secret --secret-string \'{"access_id": "...", '
            '"access_secret": "..."}\')'
        )
    return TuyaSettings(
        access_id=str(secret["access_id"]),
        access_secret=str(secret["access_secret"]),
        endpoint=endpoint,
        qps=qps,
        max_connections=max_connections,
        retry_attempts=retry_attempts,
        retry_budget_s=retry_budget_s,
        timeout_s=timeout_s,
    )
