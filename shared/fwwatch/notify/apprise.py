"""News sent through Apprise: ntfy, Telegram, Discord, Matrix, Teams, a JSON webhook and more.

One notifier per URL, so that the outbox records each delivery per URL and a URL that fails
holds back no other. Each message has the e-mail's subject (as the title) and text, given
to Apprise as plain text: it escapes them for services that read HTML, and for Slack. Chat
services that read plain text as Markdown get it as it is (Discord, Mattermost), so a
name's mentions and links are defused first (:func:`~fwwatch.safe_text.defuse_mentions`):
a device named ``@everyone`` notifies nobody. Like e-mail, it tells a whole run in one
message when ``FWWATCH_DIGEST_PER_RUN`` asks for it.

An Apprise URL holds its service's credentials (``tgram://BOT_TOKEN/CHAT_ID``), so a URL is
never shown, logged or stored: a notifier is named by its scheme and a short hash of the URL
(``apprise:json:1f0c3a9e``), the same on every run while the URL stays the same.

Apprise only tells whether a message was sent. One that it could not send (the service
down, an answer never received) is kept for the next cycle, so a post whose answer was lost
may arrive twice; Slack's own notifier (``SLACK_WEBHOOK_URL``) tells the cases apart.

Apprise is imported only when a URL is configured: it loads some 190 plugins, and the
Lambda layer does not carry it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from functools import cache
from types import ModuleType
from typing import Any
from urllib.parse import unquote

from ..events import EventGroup, EventType
from ..messages import RunDigestMessage
from ..redaction import Redaction
from ..render import TEST_SUBJECT, render_run_subject, render_run_text, render_subject, render_text
from ..safe_text import defuse_mentions
from .base import NotifyError

__all__ = ["AppriseNotifier", "apprise_url_problem", "split_apprise_urls"]

# A comma separates two URLs only before another scheme: `mailto://...?to=a@x,b@y` is one.
_SEPARATOR = re.compile(r"\s+|,(?=\s*[A-Za-z][A-Za-z0-9+.-]*://)")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,31})://")
# Where a URL's parts meet: every piece between them may be a credential.
_URL_PUNCTUATION = re.compile(r"[/:@?&=#,;+]")

# The modules of urllib3 that log, some of them whole URLs (requests sends Apprise's posts).
_URLLIB3_MODULES = ("connectionpool", "connection", "response", "poolmanager", "util.retry")

_NOTIFY_TYPES = {
    EventType.UPDATE_AVAILABLE: "info",
    EventType.UPDATE_INSTALLED: "success",
    EventType.UPDATE_FAILED: "warning",
}


def _url_pieces(url: str, *, shortest: int = 4) -> set[str]:
    """Every part of ``url`` after its scheme that could be a credential, as given and decoded."""
    rest = url.split("://", 1)[-1]
    pieces = {rest, *_URL_PUNCTUATION.split(rest)}
    return {form for piece in pieces for form in (piece, unquote(piece)) if len(form) >= shortest}


# One filter for the process, on the loggers of Apprise and of the urllib3 under it.
_hidden_urls = Redaction()
for _name in ("apprise", *(f"urllib3.{m}" for m in _URLLIB3_MODULES)):
    logging.getLogger(_name).addFilter(_hidden_urls)


@cache
def _apprise() -> ModuleType:
    """Apprise, imported once.

    Its records go no further than its own logger: a failed send's warnings reach the run
    report through the :class:`NotifyError` (not a second time on stderr).
    """
    import apprise

    logging.getLogger("apprise").propagate = False
    return apprise


def split_apprise_urls(text: str) -> list[str]:
    """The URLs of ``FWWATCH_APPRISE_URLS``: separated by spaces or commas, in order, once each."""
    urls = [piece.strip(" ,") for piece in _SEPARATOR.split(text)]
    return list(dict.fromkeys(url for url in urls if url))


def apprise_url_problem(url: str) -> str | None:
    """Why Apprise cannot use ``url``, in words that do not repeat it; ``None`` if it can."""
    scheme = _scheme(url)
    for piece in _url_pieces(url):  # before Apprise reads it, and may log it
        _hidden_urls.add(piece, "***")
    if scheme is None:
        return "is no URL (an Apprise URL reads like json://host/path or ntfy://topic)"
    # A service's own https:// URL (a Slack or Discord webhook) works too: Apprise knows it.
    if _apprise().Apprise.instantiate(url) is not None:
        return None
    plugins = _apprise().manager_plugins.NotificationManager()  # every scheme they know
    if scheme not in plugins:
        return f"has a scheme Apprise does not know ({scheme}://)"
    return (
        f"is not a {scheme}:// URL Apprise can use: a part is missing or malformed "
        f"(Apprise's documentation of {scheme}:// shows its parts)"
    )


def _scheme(url: str) -> str | None:
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else None


class AppriseNotifier:
    """Sends each group, as title and plain text, to the one service of an Apprise URL."""

    def __init__(self, url: str) -> None:
        problem = apprise_url_problem(url)
        if problem is not None:
            raise ValueError(f"the Apprise URL {problem}")
        apprise = _apprise()
        self._apprise = apprise.Apprise()
        self._apprise.add(url)
        digest = hashlib.sha256(url.encode()).hexdigest()[:8]
        #: Stable while the URL is the same; holds no part of it but the scheme.
        self.name = f"apprise:{_scheme(url)}:{digest}"

    def __repr__(self) -> str:
        return f"AppriseNotifier({self.name!r})"

    async def send(self, group: EventGroup) -> None:
        # Apprise's notify blocks (requests underneath): it runs beside the event loop.
        subject, text = render_subject(group), render_text(group)
        await asyncio.to_thread(self._notify, subject, text, _NOTIFY_TYPES[group.type])

    async def send_run(self, digest: RunDigestMessage) -> None:
        subject, text = render_run_subject(digest), render_run_text(digest)
        failed = any(release.type is EventType.UPDATE_FAILED for release in digest.releases)
        await asyncio.to_thread(self._notify, subject, text, "warning" if failed else "info")

    async def send_test(self) -> None:
        body = "This is a test message from fwwatch: Apprise delivery works.\n\n-- fwwatch"
        await asyncio.to_thread(self._notify, TEST_SUBJECT, body, "info")

    def _notify(self, title: str, body: str, notify_type: str) -> None:
        apprise = _apprise()
        try:
            result = self._apprise.notify(
                body=defuse_mentions(body),
                title=defuse_mentions(title),
                notify_type=apprise.NotifyType(notify_type),
                body_format=apprise.NotifyFormat.TEXT,
                interpret_escapes=False,
            )
        except Exception as exc:  # an exception's text may hold the URL: its type only
            raise NotifyError(f"Apprise failed ({type(exc).__name__})") from None
        if not result:
            raise NotifyError(f"Apprise could not send it: {self._reasons(result)}")

    def _reasons(self, result: Any) -> str:
        """What Apprise logged about the failure (its warnings), every part of the URL hidden."""
        said = "; ".join(dict.fromkeys(str(entry.message) for entry in result.logs()))
        return _hidden_urls.hide(said)[:300] or "no reason given"
