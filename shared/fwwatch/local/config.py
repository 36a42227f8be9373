"""Local mode's configuration: where state lives, how devices are re-checked, who hears news.

:class:`LocalSettings` is read once by the CLI, from the environment merged over a ``.env``
file in the working directory; its fields' descriptions are the CLI's help. Slack and e-mail
take the variables those tools use elsewhere (``SLACK_WEBHOOK_URL``, ``SMTP_*``,
``NOTIFY_EMAIL_*``); fwwatch's own have the prefix ``FWWATCH_``, Home Assistant's MQTT broker
(``FWWATCH_MQTT_*``) and the Apprise URLs (``FWWATCH_APPRISE_URLS``) among them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from pydantic import Field, SecretStr, field_validator, model_validator

from ..events import EventType
from ..homeassistant import DEFAULT_DISCOVERY_PREFIX, validate_discovery_prefix
from ..notify import (
    AppriseNotifier,
    ConsoleNotifier,
    EmailNotifier,
    JsonLinesNotifier,
    Notifier,
    SlackNotifier,
    SmtpSettings,
)
from ..notify.apprise import apprise_url_problem, split_apprise_urls
from ..notify.slack import validate_webhook_url
from ..tuya.config import CheckAttempts, RecheckDelaySeconds
from ..tuya.settings import HELP_DEFAULT, EnvSettings, env_prefix, is_loopback_host
from .heartbeat import Heartbeat, validate_heartbeat_url
from .mqtt import MqttBroker, parse_mqtt_url
from .store_sqlite import default_state_path

__all__ = ["LocalSettings", "StateSettings"]


class StateSettings(EnvSettings):
    """Where the state lives: all that ``fwwatch check`` reads (for the learned rate)."""

    model_config = env_prefix("FWWATCH_")

    state: Path = Field(
        default_factory=default_state_path,
        description="SQLite state file; --state overrides it",
        json_schema_extra={HELP_DEFAULT: "~/.local/state/fwwatch/state.sqlite3"},
    )


class LocalSettings(StateSettings):
    """The local mode's settings: ``LocalSettings.load(environ)``, or a ``ConfigError``."""

    max_attempts: CheckAttempts = 3
    retry_delay_s: RecheckDelaySeconds = 30
    lock_wait_s: float = Field(
        default=10,
        ge=0,
        le=3600,
        description="seconds a run or a watch cycle waits for another fwwatch process using "
        "the same state file, then gives up with exit 2 naming it; 0 does not wait",
    )
    slack_webhook_url: SecretStr | None = Field(
        default=None,
        validation_alias="SLACK_WEBHOOK_URL",
        description="post news to a Slack incoming webhook",
    )
    smtp_host: str | None = Field(
        default=None,
        validation_alias="SMTP_HOST",
        description="send news by e-mail through this SMTP server (with NOTIFY_EMAIL_TO)",
    )
    smtp_port: int = Field(
        default=587,
        ge=1,
        le=65535,
        validation_alias="SMTP_PORT",
        description="the SMTP server's port; 465 is implicit TLS",
    )
    smtp_user: str | None = Field(
        default=None, validation_alias="SMTP_USER", description="SMTP user name"
    )
    smtp_password: SecretStr | None = Field(
        default=None, validation_alias="SMTP_PASSWORD", description="SMTP password"
    )
    smtp_starttls: bool = Field(
        default=True,
        validation_alias="SMTP_STARTTLS",
        description="upgrade the SMTP connection with STARTTLS",
    )
    email_to: tuple[str, ...] = Field(
        default=(),
        validation_alias="NOTIFY_EMAIL_TO",
        description="e-mail recipients, separated by commas",
    )
    email_from: str | None = Field(
        default=None,
        validation_alias="NOTIFY_EMAIL_FROM",
        description="e-mail sender",
        json_schema_extra={HELP_DEFAULT: "fwwatch@SMTP_HOST"},
    )
    jsonl: Path | None = Field(default=None, description="append news to a JSON-lines file")
    digest_per_run: bool = Field(
        default=False,
        description="e-mail and the Apprise URLs get one message per run listing every "
        "release, instead of one per release (Slack, the console and the JSON-lines file "
        "keep one per release)",
    )
    apprise_urls: tuple[SecretStr, ...] = Field(
        default=(),
        description="send news through Apprise to each of these URLs (json://, ntfy://, "
        "tgram://, discord://...), separated by spaces or commas",
    )
    mqtt_url: SecretStr | None = Field(
        default=None,
        description="after each run, publish every device channel to Home Assistant as an "
        "MQTT update entity: mqtt://[user:password@]host[:port], mqtts:// for TLS",
    )
    mqtt_password: SecretStr | None = Field(
        default=None, description="the password, if FWWATCH_MQTT_URL holds none"
    )
    mqtt_discovery_prefix: str = Field(
        default=DEFAULT_DISCOVERY_PREFIX,
        description="Home Assistant's MQTT discovery prefix",
    )
    events: frozenset[EventType] = Field(
        default=frozenset(EventType),
        description="the news notifiers get, separated by commas: "
        + ", ".join(EventType)
        + ", or all (the run report and the state keep all of it)",
        json_schema_extra={HELP_DEFAULT: "all"},
    )

    @field_validator("email_to", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(address.strip() for address in value.split(",") if address.strip())
        return value

    heartbeat_url: SecretStr | None = Field(
        default=None,
        description="after each run or watch cycle, GET this URL (healthchecks.io style), "
        "or <URL>/fail when the cycle failed or could not check some devices",
    )

    @field_validator("events", mode="before")
    @classmethod
    def _split_events(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        names = [name.strip().lower() for name in value.split(",")]
        if names == ["all"]:  # the default, as --help shows it
            return frozenset(EventType)
        known = {event.value: event for event in EventType}
        for number, name in enumerate(names, 1):
            if name and name not in known:
                raise ValueError(
                    f"item {number} is not an event; the events are " + ", ".join(EventType)
                )
        events = frozenset(known[name] for name in names if name)
        if not events:
            raise ValueError("no event named; leave it unset for all of them")
        return events

    @field_validator("apprise_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        return split_apprise_urls(value) if isinstance(value, str) else value

    @field_validator("apprise_urls")
    @classmethod
    def _check_urls(cls, urls: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        # By position only: a URL holds its service's token.
        for position, url in enumerate(urls, 1):
            problem = apprise_url_problem(url.get_secret_value())
            if problem is not None:
                raise ValueError(f"URL {position} of {len(urls)} {problem}")
        return urls

    @field_validator("slack_webhook_url")
    @classmethod
    def _check_webhook(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            validate_webhook_url(value.get_secret_value())
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_mqtt_url(value.get_secret_value())
        return value

    @field_validator("mqtt_discovery_prefix")
    @classmethod
    def _check_discovery_prefix(cls, value: str) -> str:
        return validate_discovery_prefix(value)

    @model_validator(mode="after")
    def _check_mqtt(self) -> LocalSettings:
        if self.mqtt_password is not None and self.mqtt_url is None:
            raise ValueError("FWWATCH_MQTT_PASSWORD is set but FWWATCH_MQTT_URL is not")
        try:
            _ = self.mqtt_broker
        except ValueError as exc:
            raise ValueError(f"FWWATCH_MQTT_URL {exc}") from None
        return self

    @field_validator("heartbeat_url")
    @classmethod
    def _check_heartbeat(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            validate_heartbeat_url(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _check_email(self) -> LocalSettings:
        # Half-configured e-mail would be silently off: name what is missing instead.
        email = {"SMTP_HOST": self.smtp_host, "NOTIFY_EMAIL_TO": self.email_to}
        if any(email.values()) and not all(email.values()):
            missing = " and ".join(name for name, value in email.items() if not value)
            raise ValueError(f"e-mail notifications need {missing} as well")
        if self.smtp_user and self.smtp_password is None:
            raise ValueError("SMTP_USER is set but SMTP_PASSWORD is not")
        clear_text = not self.smtp_starttls and self.smtp_port != 465
        if (
            self.smtp_password is not None
            and clear_text
            and not is_loopback_host(self.smtp_host or "")
        ):
            raise ValueError(
                "SMTP_STARTTLS=false would send SMTP_PASSWORD in clear text to "
                f"{self.smtp_host}; use STARTTLS (the default) or port 465"
            )
        return self

    @property
    def smtp(self) -> SmtpSettings | None:
        """The e-mail settings, when e-mail is configured."""
        if not (self.smtp_host and self.email_to):
            return None
        return SmtpSettings(
            host=self.smtp_host,
            port=self.smtp_port,
            user=self.smtp_user,
            password=self.smtp_password,
            sender=self.email_from or f"fwwatch@{self.smtp_host}",
            recipients=self.email_to,
            starttls=self.smtp_starttls,
        )

    @property
    def mqtt_broker(self) -> MqttBroker | None:
        """Home Assistant's MQTT broker, when one is configured."""
        if self.mqtt_url is None:
            return None
        return parse_mqtt_url(self.mqtt_url.get_secret_value(), self.mqtt_password)

    def heartbeat(self) -> Heartbeat | None:
        """The heartbeat after each cycle, when ``FWWATCH_HEARTBEAT_URL`` is set."""
        if self.heartbeat_url is None:
            return None
        return Heartbeat(self.heartbeat_url.get_secret_value())

    def notifiers(self, console: TextIO | None = None) -> list[Notifier]:
        """The console notifier, then every configured one."""
        notifiers: list[Notifier] = [ConsoleNotifier(console)]
        if self.slack_webhook_url is not None:
            notifiers.append(SlackNotifier(self.slack_webhook_url.get_secret_value()))
        if self.smtp is not None:
            notifiers.append(EmailNotifier(self.smtp))
        if self.jsonl is not None:
            notifiers.append(JsonLinesNotifier(self.jsonl))
        notifiers.extend(AppriseNotifier(url.get_secret_value()) for url in self.apprise_urls)
        return notifiers
