"""The Slack function's service: each news message of the topic posted to a webhook."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..messages import SnsDelivery
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
    ) -> None:
        self.settings = settings
        self._read_secret = read_secret
        self._transport = transport
        self._max_wait_s = max_wait_s

    def handle(self, event: Mapping[str, Any]) -> dict[str, int]:
        """Post every SNS record; raise on failure so that SNS retries the delivery."""
        delivery = SnsDelivery.model_validate(event)
        url = self._read_secret(self.settings.slack_webhook_secret_name)
        if isinstance(url, dict):
            url = url.get("webhook_url") or url.get("url")
        from ..notify.slack import SlackNotifier

        notifier = SlackNotifier(str(url), transport=self._transport, max_wait_s=self._max_wait_s)

        async def post_all() -> int:
            for message in delivery.messages:
                await notifier.send(message.to_group())
            return len(delivery.messages)

        return {"posted": run_async(post_all())}
