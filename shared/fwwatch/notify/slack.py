"""News posted to Slack through an incoming webhook (Block Kit, with a text fallback).

The webhook URL is a secret: it never appears in errors or logs. Slack answers a burst with
HTTP 429 and ``Retry-After``; the notifier waits as told (within a bound) and retries, and
retries 5xx a few times, then raises :class:`NotifyError` so the news is tried again later:
such answers say the message was not posted.

A request that got no answer after it was sent (a read timeout, a connection dropped while
waiting) may have been posted all the same. It is tried once more, with a longer timeout;
if that is not answered either, or the post fails in any way after such an attempt,
:class:`DeliveryUncertainError` says the message may have arrived and must not be sent
again. So a slow webhook gets a message at most twice, never once per retry.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..events import EventGroup
from ..redaction import Redaction
from ..render import TEST_SUBJECT, render_slack
from ..safe_text import strip_controls
from ..tuya import is_loopback_host
from .base import DeliveryUncertainError, NotifyError

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


# One filter for the process, however many notifiers (a `watch` makes one per cycle).
_hide_webhooks = Redaction()
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
        retry_timeout_s: float = 20.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = validate_webhook_url(webhook_url)
        self._max_attempts = max_attempts
        self._max_wait_s = max_wait_s
        self._timeout_s = timeout_s
        # The one retry of a post that may have arrived waits longer for its answer. With
        # the defaults, two unanswered posts and the wait between them fit well within the
        # Slack function's 60 s, so Lambda does not cut the second one short.
        self._retry_timeout_s = retry_timeout_s
        self._transport = transport
        path = urlsplit(self._url).path
        if path.strip("/"):
            _hide_webhooks.add(path, "/<hidden webhook>")

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
        """POST one message, honouring 429 ``Retry-After`` and retrying 5xx (bounded).

        A post that may have arrived unanswered is retried once, with the longer timeout;
        then :class:`DeliveryUncertainError`.
        """
        unanswered = 0  # attempts that may have been posted, without an answer
        async with httpx.AsyncClient(timeout=self._timeout_s, transport=self._transport) as http:
            for attempt in range(1, self._max_attempts + 1):
                timeout = self._retry_timeout_s if unanswered else self._timeout_s
                try:
                    response = await http.post(self._url, json=payload, timeout=timeout)
                except httpx.HTTPError as exc:
                    if _may_have_arrived(exc):
                        unanswered += 1
                        problem = (
                            f"Slack did not answer within {timeout:g} s"
                            if isinstance(exc, httpx.TimeoutException)
                            else "the connection to Slack broke before its answer"
                        ) + f" ({type(exc).__name__})"
                        if unanswered == 2:
                            raise DeliveryUncertainError(
                                f"{problem}, for the second time: the message may not have "
                                "arrived, or arrived twice; it is not sent again"
                            ) from None
                    else:
                        problem = f"cannot reach Slack ({type(exc).__name__})"
                    wait = min(2.0**attempt, self._max_wait_s)
                else:
                    if response.status_code == 200:
                        return
                    answer = strip_controls(response.text[:100])
                    problem = f"Slack answered HTTP {response.status_code}: {answer}"
                    if response.status_code == 429:
                        wait = _retry_after(response, default=1.0)
                        if wait > self._max_wait_s:
                            raise _failure(
                                f"{problem}; asked to wait {wait:.0f} s, too long", unanswered
                            )
                    elif response.status_code >= 500:
                        wait = min(2.0**attempt, self._max_wait_s)
                    else:
                        # 400 invalid_payload, 403 invalid_token, 404 no_service...: no retry helps.
                        raise _failure(problem, unanswered)
                if attempt == self._max_attempts:
                    raise _failure(f"{problem}; gave up after {attempt} attempts", unanswered)
                logger.info("%s; retrying in %.1f s", problem, wait)
                await asyncio.sleep(wait)


def _may_have_arrived(exc: httpx.HTTPError) -> bool:
    """The request was sent (or partly) and no answer came: Slack may have posted it.

    A connection refused or not made in time, or no free connection, sent nothing.
    """
    return isinstance(
        exc,
        httpx.ReadTimeout
        | httpx.WriteTimeout
        | httpx.ReadError
        | httpx.WriteError
        | httpx.RemoteProtocolError,
    )


def _failure(problem: str, unanswered: int) -> NotifyError:
    """The error that ends a post: uncertain if an earlier attempt may have arrived."""
    if unanswered:
        return DeliveryUncertainError(
            f"{problem}; an earlier attempt went unanswered and may have arrived, so the "
            "message is not sent again"
        )
    return NotifyError(problem)


def _retry_after(response: httpx.Response, *, default: float) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", default)))
    except ValueError:
        return default
