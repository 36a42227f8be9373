"""News sent by e-mail over SMTP (STARTTLS on 587, implicit TLS on 465)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ..events import EventGroup
from ..messages import RunDigestMessage
from ..render import TEST_SUBJECT, render_run_subject, render_run_text, render_subject, render_text
from ..safe_text import strip_controls
from .base import NotifyError

__all__ = ["EmailNotifier", "SmtpSettings"]


class SmtpSettings(BaseModel):
    """Where and how to send e-mail. The password is never shown."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    user: str | None = None
    password: SecretStr | None = None
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = True
    timeout_s: float = 20.0


class EmailNotifier:
    """Sends each group (or each run, with the per-run digest) as one plain-text e-mail."""

    name = "email"

    def __init__(
        self, settings: SmtpSettings, *, tls_context: ssl.SSLContext | None = None
    ) -> None:
        self.settings = settings
        self._tls = tls_context or ssl.create_default_context()

    def __repr__(self) -> str:
        return f"EmailNotifier(host={self.settings.host!r}, to={list(self.settings.recipients)!r})"

    async def send(self, group: EventGroup) -> None:
        await asyncio.to_thread(self._send, render_subject(group), render_text(group))

    async def send_run(self, digest: RunDigestMessage) -> None:
        await asyncio.to_thread(self._send, render_run_subject(digest), render_run_text(digest))

    async def send_test(self) -> None:
        body = "This is a test message from fwwatch: e-mail delivery works.\n\n-- fwwatch"
        await asyncio.to_thread(self._send, TEST_SUBJECT, body)

    def _send(self, subject: str, body: str) -> None:
        message = EmailMessage()
        # One line, no controls: a name holding "\nBcc: x@y" adds no header, and a mail
        # reader on a terminal is not steered by escape sequences.
        message["Subject"] = strip_controls(subject)
        message["From"] = self.settings.sender
        message["To"] = ", ".join(self.settings.recipients)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="fwwatch")
        message.set_content(strip_controls(body, keep_newlines=True))
        try:
            self._deliver(message, self.settings.recipients)
        except (smtplib.SMTPException, OSError) as exc:
            raise NotifyError(
                f"e-mail via {self.settings.host}:{self.settings.port} failed: {_describe(exc)}"
            ) from None

    def _deliver(self, message: EmailMessage, recipients: Sequence[str]) -> None:
        settings = self.settings
        smtp: smtplib.SMTP
        if settings.port == 465:
            smtp = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout_s, context=self._tls
            )
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
        with smtp:
            smtp.ehlo()
            if settings.port != 465 and settings.starttls:
                smtp.starttls(context=self._tls)
                smtp.ehlo()
            if settings.user and settings.password is not None:
                smtp.login(settings.user, settings.password.get_secret_value())
            smtp.send_message(message, to_addrs=list(recipients))


def _describe(exc: BaseException) -> str:
    # SMTP errors carry the server's reply; never the password (smtplib does not echo it).
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return f"{exc.smtp_code} {text[:200]}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")
