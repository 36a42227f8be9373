"""Where local mode's news goes: console, Slack, e-mail, a JSON-lines file, Apprise URLs.

These are :class:`Notifier` s. The cloud publishes through another port, a
SNS topic, through the digest; :mod:`fwwatch.news` says why the two differ.
"""

from .apprise import AppriseNotifier
from .base import DeliveryUncertainError, Notifier, NotifyError, RunDigestNotifier
from .console import ConsoleNotifier
from .email import EmailNotifier, SmtpSettings
from .jsonl import JsonLinesNotifier
from .slack import SlackNotifier

__all__ = [
    "AppriseNotifier",
    "ConsoleNotifier",
    "DeliveryUncertainError",
    "EmailNotifier",
    "JsonLinesNotifier",
    "Notifier",
    "NotifyError",
    "RunDigestNotifier",
    "SlackNotifier",
    "SmtpSettings",
]
