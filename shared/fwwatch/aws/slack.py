"""The Slack function's service: each news message of the topic posted to a webhook.

SNS invokes the function asynchronously, and Lambda invokes it again when it raises: that is
how a post refused with 429 or 5xx for longer than the notifier's retries gets another
chance (then the failure queue). A post that went unanswered twice may have arrived
(:class:`~fwwatch.notify.DeliveryUncertainError`): raising would have Lambda post it again,
up to twice more, each time waiting for a webhook that is slow. So that record is logged as
an error, saying it may not have been delivered, and the invocation succeeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..messages import SnsDelivery
from .observability import logger
from .runtime import run_async
from .secrets import SecretReader, powertools_secret
from .settings import SlackSettings

__all__ = ["SlackService"]


class SlackService:
    """Post each notification of the topic to Slack."""

    def __init__(
        self,
        settings: SlackSettings,
        *,
        read_secret: SecretReader = powertools_secret,
        transport: Any = None,
        max_wait_s: float = 30.0,
        timeout_s: float = 10.0,
        retry_timeout_s: float = 20.0,
    ) -> None:
        self.settings = settings
        self._read_secret = read_secret
        self._transport = transport
        self._max_wait_s = max_wait_s
        self._timeout_s = timeout_s
        self._retry_timeout_s = retry_timeout_s

    def handle(self, event: Mapping[str, Any]) -> dict[str, int]:
        """Post every SNS record; raise on a failure that is sure (so that Lambda retries),
        not on one that may have been delivered."""
        delivery = SnsDelivery.model_validate(event)
        url = self._read_secret(self.settings.slack_webhook_secret_name)
        if isinstance(url, dict):
            url = url.get("webhook_url") or url.get("url")
        # Imported here: the notifiers (httpx, smtplib) are no part of the module's import.
        from ..notify import DeliveryUncertainError, SlackNotifier

        notifier = SlackNotifier(
            str(url),
            transport=self._transport,
            max_wait_s=self._max_wait_s,
            timeout_s=self._timeout_s,
            retry_timeout_s=self._retry_timeout_s,
        )

        async def post_all() -> dict[str, int]:
            posted = uncertain = 0
            for message in delivery.messages:
                group = message.to_group()
                try:
                    await notifier.send(group)
                except DeliveryUncertainError as exc:
                    uncertain += 1
                    logger.error(
                        f"the Slack post may not have been delivered (not retried): {exc}",
                        extra={
                            "event_type": group.type.value,
                            "product_id": group.product_id,
                            "channel": group.channel,
                            "version": group.version,
                            "devices": group.device_count,
                        },
                    )
                    continue
                posted += 1
            return {"posted": posted, "uncertain": uncertain}

        return run_async(post_all())
