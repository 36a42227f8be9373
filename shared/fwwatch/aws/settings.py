"""Each function's configuration: one settings model, read once at cold start.

A handler builds its service from ``CheckerSettings.load()`` (and so on); any problem is a
:class:`~fwwatch.tuya.ConfigError` naming the variable. Every variable template.yaml gives
a function is a field of that function's model (a test keeps the two in step), and the
bounds the functions share with the CLI are declared once, in :mod:`fwwatch.tuya.config`.

Secrets are never in the environment: only the names of the Secrets Manager secrets are,
and the values are read through Powertools Parameters (cached).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from ..tuya import THING_PAGE_SIZE, TuyaConfigError, TuyaSettings
from ..tuya.config import (
    CheckAttempts,
    ProjectRequestsPerSecond,
    RecheckDelaySeconds,
    RetryAttempts,
    RetryBudgetSeconds,
    TimeoutSeconds,
)
from ..tuya.settings import EnvSettings

__all__ = [
    "HAND_OFF_S",
    "CheckerSettings",
    "DifferSettings",
    "DigestSettings",
    "FunctionSettings",
    "SchedulerSettings",
    "SlackSettings",
    "TuyaAccessSettings",
    "listing_qps",
]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

#: The template's DigestDelaySeconds: how long a digest request waits, so that the state
#: table's stream is drained first (SQS holds a message back 900 s at most).
DigestDelaySeconds = Annotated[
    int,
    Field(
        ge=0,
        le=900,
        description="seconds a digest waits after a run completes, or after late news",
    ),
]
#: The template's DigestDeadlineSeconds: a run whose check never completes (a message in
#: the dead-letter queue) is digested this long after its first news all the same.
DigestDeadlineSeconds = Annotated[
    int,
    Field(
        ge=1,
        le=86400,
        description="seconds after a run's first news by which its digest goes out anyway",
    ),
]


#: How much faster than the checks the listing goes, so that the checkers never wait for it.
LISTING_LEAD = 1.25
#: Seconds a listing step keeps, past its last page, to send its messages and hand on.
HAND_OFF_S = 10


def listing_qps(ceiling: float) -> float:
    """The scheduler's share of the project's ceiling on requests per second.

    Listing and checking run at once and share the ceiling. One listing request names 20
    devices and each device costs one check request, so the listing keeps pace with the
    checks on a 21st of the ceiling; it takes a quarter more than that to stay ahead, and
    the checkers share the rest (:attr:`CheckerSettings.qps_per_instance`).
    """
    return ceiling * LISTING_LEAD / (THING_PAGE_SIZE + 1)


class FunctionSettings(EnvSettings):
    """What the template gives every function (its Globals).

    Powertools reads these variables itself; they are declared here so that a wrong value
    fails at cold start with its name, like every other variable.
    """

    powertools_service_name: str = Field(
        default="fwwatch", min_length=1, description="service name in logs and metrics"
    )
    powertools_metrics_namespace: str = Field(
        default="fwwatch", min_length=1, description="CloudWatch namespace of the metrics"
    )
    powertools_log_level: LogLevel = Field(default="INFO", description="log level")
    log_level: LogLevel = Field(
        default="INFO", description="log level, for Powertools versions that read LOG_LEVEL"
    )

    @field_validator("powertools_log_level", "log_level", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        # Powertools takes "debug" as well as "DEBUG".
        return value.upper() if isinstance(value, str) else value


class TuyaAccessSettings(FunctionSettings):
    """What every function that calls Tuya needs: the endpoint, the secret's name, the token."""

    tuya_endpoint: str = Field(description="base URL of the cloud project's data centre")
    tuya_secret_name: str = Field(
        min_length=1,
        description='Secrets Manager secret holding {"access_id": ..., "access_secret": ...}',
    )
    tuya_qps: ProjectRequestsPerSecond = 20.0
    tuya_retry_attempts: RetryAttempts = 8
    tuya_retry_budget_s: RetryBudgetSeconds = 30.0
    tuya_timeout_s: TimeoutSeconds = 10.0
    control_table: str = Field(
        min_length=1, description="DynamoDB table of the shared token and learned rates"
    )

    def client_settings(self, secret: Any, *, qps: float) -> TuyaSettings:
        """The Tuya client's settings: credentials from the secret's JSON value
        ``{"access_id", "access_secret"}``, everything else from this function's settings."""
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
            endpoint=self.tuya_endpoint,
            qps=qps,
            retry_attempts=self.tuya_retry_attempts,
            retry_budget_s=self.tuya_retry_budget_s,
            timeout_s=self.tuya_timeout_s,
        )


class SchedulerSettings(TuyaAccessSettings):
    """The scheduler: where to send device IDs, and which; where a run's listing is kept,
    and where it is handed on."""

    check_queue_url: str = Field(min_length=1, description="SQS queue of the check messages")
    listing_queue_url: str = Field(
        min_length=1, description="SQS queue that a run's listing is handed on through"
    )
    run_table: str = Field(
        min_length=1, description="DynamoDB table of the runs (each run's listing item)"
    )
    device_ids: str = Field(
        default="", description="device IDs separated by commas; empty: every device"
    )
    # A message's devices are checked in one invocation, ten messages at a time: 100 keeps
    # a batch well inside the checker's timeout.
    devices_per_message: int = Field(
        default=100, ge=1, le=100, description="device IDs per check message"
    )

    @property
    def listing_qps(self) -> float:
        """The listing's share of the project's ceiling (:func:`listing_qps`)."""
        return listing_qps(self.tuya_qps)

    @property
    def step_reserve_s(self) -> float:
        """The time a listing step keeps in reserve when it starts another page: the page's
        longest (its retries' budget, then one more answer), then the hand-on."""
        return self.tuya_retry_budget_s + self.tuya_timeout_s + HAND_OFF_S

    @property
    def configured_ids(self) -> list[str]:
        """The ``DeviceIds`` parameter as a list (empty: discover every device)."""
        return [part.strip() for part in self.device_ids.split(",") if part.strip()]


class CheckerSettings(TuyaAccessSettings):
    """The checker: the state table, retries, and its share of the rate limit."""

    state_table: str = Field(min_length=1, description="DynamoDB table of the firmware state")
    check_queue_url: str = Field(
        min_length=1, description="SQS queue that re-checks go back on, delayed"
    )
    check_dead_letter_queue_url: str = Field(
        min_length=1, description="SQS queue of the devices that failed every check"
    )
    check_concurrency: int = Field(
        default=16, ge=1, le=256, description="devices checked at once by one instance"
    )
    # SQS's own bounds for an event source's maximum concurrency. Each instance takes
    # 1/N of the project's rate: a value below what SQS may run would overrun the quota.
    checker_max_concurrency: int = Field(
        default=2, ge=2, le=1000, description="checker instances the queue may run at once"
    )
    max_attempts: CheckAttempts = 3
    retry_delay_s: RecheckDelaySeconds = 30
    run_table: str = Field(min_length=1, description="DynamoDB table of the runs' progress")
    digest_queue_url: str = Field(
        min_length=1, description="SQS queue that a completed run's digest is asked on"
    )
    digest_delay_s: DigestDelaySeconds = 60

    @property
    def qps_per_instance(self) -> float:
        """Tuya's ceiling is per project: each concurrent instance takes its share of what
        the listing, running at the same time, leaves (:func:`listing_qps`)."""
        return (self.tuya_qps - listing_qps(self.tuya_qps)) / self.checker_max_concurrency


class DifferSettings(FunctionSettings):
    """The differ: where a run's news is kept, and whether a first sighting is news."""

    run_table: str = Field(
        min_length=1, description="DynamoDB table where each run's news waits for its digest"
    )
    digest_queue_url: str = Field(
        min_length=1, description="SQS queue of the digest requests (deadline, late news)"
    )
    digest_delay_s: DigestDelaySeconds = 60
    digest_deadline_s: DigestDeadlineSeconds = 21600
    notify_on_first_seen: bool = Field(
        default=False, description="announce an update already on offer at a first sighting"
    )


class DigestSettings(FunctionSettings):
    """The digest: a run's news, published once per release."""

    run_table: str = Field(
        min_length=1, description="DynamoDB table of the runs' progress and news"
    )
    control_table: str = Field(
        min_length=1, description="DynamoDB table of the ledger of published news"
    )
    topic_arn: str = Field(min_length=1, description="SNS topic of the notifications")
    digest_queue_url: str = Field(
        min_length=1, description="SQS queue of the digest requests (to send one on again)"
    )
    digest_per_run: bool = Field(
        default=False, description="also publish one message per run listing every release"
    )


class SlackSettings(FunctionSettings):
    """The Slack function: which secret holds the webhook URL."""

    slack_webhook_secret_name: str = Field(
        min_length=1, description="Secrets Manager secret holding the Slack webhook URL"
    )
