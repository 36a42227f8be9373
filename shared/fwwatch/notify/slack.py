"""News posted to Slack through an incoming webhook (Block Kit, with a text fallback).

The webhook URL is a secret: it never appears in errors or logs. Slack answers a burst with
HTTP 429 and ``Retry-After``; the notifier waits as told (within a bound) and retries, and
retries 5xx a few times, then raises so the news is tried again later.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..events import EventGroup
from ..render import TEST_SUBJECT, render_slack
from ..tuya import is_loopback_host
from .base import NotifyError

__all__ = ["SlackNotifier", "validate_webhook_url"]

logger = logging.getLogger("fwwatch.notify.slack")


def validate_webhook_url(url: str) -> str:
    """An https URL (plain http only to a loopback address, for tests), else ``ValueError``."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url.strip()
    if parts.scheme == "http" and is_loopback_host(host):
        return url.strip()
    raise ValueError(
        "SLACK_WEBHOOK_URL must be an https URL (https://hooks.slack.com/services/...)"
    )


class _HideWebhooks(logging.Filter):
    """httpx logs each request URL at INFO; a webhook URL is a credential."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = message
        for path in self.paths:
            hidden = hidden.replace(path, "/<hidden webhook>")
        if hidden != message:
            record.msg = hidden
            record.args = None
        return True


# One filter for the process, however many notifiers (a `watch` makes one per cycle).
_hide_webhooks = _HideWebhooks()
logging.getLogger("httpx").addFilter(_hide_webhooks)


class SlackNotifier:
    """Posts each group to a Slack incoming webhook."""

    name = "slack"

    def __init__(
        self,
        webhook_url: str,
        *,
        max_attempts: int = 4,
        max_wait_s: float = 30.0,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = validate_webhook_url(webhook_url)
        self._max_attempts = max_attempts
        self._max_wait_s = max_wait_s
        self._timeout_s = timeout_s
        self._transport = transport
        path = urlsplit(self._url).path
        if path.strip("/"):
            _hide_webhooks.paths.add(path)

    def __repr__(self) -> str:
        return "SlackNotifier(<webhook hidden>)"

    async def send(self, group: EventGroup) -> None:
        await self.post(render_slack(group))

    async def send_test(self) -> None:
        text = f"{TEST_SUBJECT}: Slack delivery works. No firmware news in this message."
        await self.post(
            {
                "text": text,
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn", "text": f":test_tube: {text}"}}
                ],
            }
        )

    async def post(self, payload: dict[str, Any]) -> None:
        """POST one message, honouring 429 ``Retry-After`` and retrying 5xx (bounded)."""
        async with httpx.AsyncClient(timeout=self._timeout_s, transport=self._transport) as http:
            for attempt in range(1, self._max_attempts + 1):
                try:
                    response = await http.post(self._url, json=payload)
                except httpx.HTTPError as exc:
                    problem = f"cannot reach Slack ({type(exc).__name__})"
                    wait = min(2.0**attempt, self._max_wait_s)
                else:
                    if response.status_code == 200:
                        return
                    problem = f"Slack answered HTTP {response.status_code}: {response.text[:100]}"
                    if response.status_code == 429:
                        wait = _retry_after(response, default=1.0)
                        if wait > self._max_wait_s:
                            raise NotifyError(f"{problem}; asked to wait {wait:.0f} s, too long")
                    elif response.status_code >= 500:
                        wait = min(2.0**attempt, self._max_wait_s)
                    else:
                        # 400 invalid_payload, 403 invalid_token, 404 no_service...: no retry helps.
                        raise NotifyError(problem)
                if attempt == self._max_attempts:
                    raise NotifyError(f"{problem}; gave up after {attempt} attempts")
                logger.info("%s; retrying in %.1f s", problem, wait)
                await asyncio.sleep(wait)


def _retry_after(response: httpx.Response, *, default: float) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", default)))
    except ValueError:
        return default
