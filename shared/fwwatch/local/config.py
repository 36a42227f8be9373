"""Local mode's configuration: where state lives and which notifiers are on.

From environment variables (and a ``.env`` file in the working directory, which the CLI
merges under the real environment):

- ``FWWATCH_STATE``: the SQLite file (default: the user's state directory)
- ``FWWATCH_JSONL``: append news to this JSON-lines file
- ``SLACK_WEBHOOK_URL``: post news to Slack
- ``SMTP_HOST``, ``SMTP_PORT``, ``SMTP_USER``, ``SMTP_PASSWORD``, ``SMTP_STARTTLS``,
  ``NOTIFY_EMAIL_TO`` (comma-separated), ``NOTIFY_EMAIL_FROM``: send news by e-mail
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from ..notify import (
    ConsoleNotifier,
    EmailNotifier,
    JsonLinesNotifier,
    Notifier,
    SlackNotifier,
    SmtpSettings,
)
from ..notify.slack import validate_webhook_url
from ..tuya.config import is_loopback_host
from .store_sqlite import default_state_path

__all__ = ["LocalConfigError", "LocalSettings"]

_VARIABLES = {
    "state": "FWWATCH_STATE",
    "jsonl": "FWWATCH_JSONL",
    "slack_webhook_url": "SLACK_WEBHOOK_URL",
    "smtp_host": "SMTP_HOST",
    "smtp_port": "SMTP_PORT",
    "smtp_user": "SMTP_USER",
    "smtp_password": "SMTP_PASSWORD",
    "smtp_starttls": "SMTP_STARTTLS",
    "email_to": "NOTIFY_EMAIL_TO",
    "email_from": "NOTIFY_EMAIL_FROM",
}


class LocalConfigError(ValueError):
    """Local configuration that cannot work; the message names the variable."""


class LocalSettings(BaseModel):
    """The local mode's settings (read once by the CLI)."""

    model_config = ConfigDict(frozen=True)

    state: Path = Field(default_factory=default_state_path)
    jsonl: Path | None = None
    slack_webhook_url: SecretStr | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    email_to: tuple[str, ...] = ()
    email_from: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LocalSettings:
        """Read the variables, or raise :class:`LocalConfigError` naming the wrong one."""
        values: dict[str, object] = {}
        for field, variable in _VARIABLES.items():
            raw = environ.get(variable, "").strip()
            if raw:
                values[field] = raw
        if "email_to" in values:
            values["email_to"] = tuple(
                address.strip() for address in str(values["email_to"]).split(",") if address.strip()
            )
        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            error = exc.errors(include_input=False, include_url=False)[0]
            variable = _VARIABLES.get(str(error["loc"][0]), str(error["loc"][0]))
            raise LocalConfigError(f"{variable}: {error['msg']}") from None
        settings.check()
        return settings

    def check(self) -> None:
        """Fail on half-configured notifiers, naming what is missing."""
        if self.slack_webhook_url is not None:
            try:
                validate_webhook_url(self.slack_webhook_url.get_secret_value())
            except ValueError as exc:
                raise LocalConfigError(str(exc)) from None
        email = {"SMTP_HOST": self.smtp_host, "NOTIFY_EMAIL_TO": self.email_to}
        if any(email.values()) and not all(email.values()):
            missing = " and ".join(name for name, value in email.items() if not value)
            raise LocalConfigError(f"e-mail notifications need {missing} as well")
        if self.smtp_user and self.smtp_password is None:
            raise LocalConfigError("SMTP_USER is set but SMTP_PASSWORD is not")
        clear_text = not self.smtp_starttls and self.smtp_port != 465
        if (
            self.smtp_password is not None
            and clear_text
            and not is_loopback_host(self.smtp_host or "")
        ):
            raise LocalConfigError(
                "SMTP_STARTTLS=false would send SMTP_PASSWORD in clear text to "
                f"{self.smtp_host}; use STARTTLS (the default) or port 465"
            )

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

    def notifiers(self, console: TextIO | None = None) -> list[Notifier]:
        """The console notifier, then every configured one."""
        notifiers: list[Notifier] = [ConsoleNotifier(console)]
        if self.slack_webhook_url is not None:
            notifiers.append(SlackNotifier(self.slack_webhook_url.get_secret_value()))
        if self.smtp is not None:
            notifiers.append(EmailNotifier(self.smtp))
        if self.jsonl is not None:
            notifiers.append(JsonLinesNotifier(self.jsonl))
        return notifiers
