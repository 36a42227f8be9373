"""Credentials kept out of log records: one filter, however many notifiers put it to use.

httpx logs every request URL at INFO, and Apprise and urllib3 log whole URLs at DEBUG; a
Slack webhook, a heartbeat URL and an Apprise URL are credentials. Each module that holds
such a URL makes one :class:`Redaction` for the process, puts it on the loggers concerned,
and tells it each secret text with what to show instead.
"""

from __future__ import annotations

import logging

__all__ = ["Redaction"]


class Redaction(logging.Filter):
    """Replaces every secret text it was given in the records it sees, the longest first
    (a secret containing another, as ``<URL>/fail`` contains ``<URL>``, is hidden whole)."""

    def __init__(self) -> None:
        super().__init__()
        self._replacements: dict[str, str] = {}
        self._order: list[str] = []

    def add(self, secret: str, shown_as: str) -> None:
        """Show ``shown_as`` wherever ``secret`` would appear, from now on."""
        if self._replacements.get(secret) == shown_as:
            return
        self._replacements[secret] = shown_as
        self._order = sorted(self._replacements, key=len, reverse=True)

    def hide(self, text: str) -> str:
        """``text`` with each secret replaced."""
        for secret in self._order:
            text = text.replace(secret, self._replacements[secret])
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = self.hide(message)
        if hidden != message:
            record.msg, record.args = hidden, None
        return True
