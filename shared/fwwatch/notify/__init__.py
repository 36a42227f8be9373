"""Where news goes: console, Slack, e-mail, a JSON-lines file (and SNS, in the cloud)."""

from .base import Notifier, NotifyError
from .console import ConsoleNotifier
from .email import EmailNotifier, SmtpSettings
from .jsonl import JsonLinesNotifier
from .slack import SlackNotifier

__all__ = [
    "ConsoleNotifier",
    "EmailNotifier",
    "JsonLinesNotifier",
    "Notifier",
    "NotifyError",
    "SlackNotifier",
    "SmtpSettings",
]
