"""The differ's service: the table's stream turned into published, deduplicated news."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from ..news import NewsLedger, Publisher, news_from_changes, publish_news
from .ledger_dynamodb import DynamoNewsLedger
from .observability import logger, metrics
from .publish_sns import SnsPublisher
from .settings import DifferSettings
from .stream import read_stream

__all__ = ["DifferService"]


class DifferService:
    """Turn a batch of state changes from the table's stream into published news."""

    def __init__(
        self, settings: DifferSettings, *, ledger: NewsLedger, publisher: Publisher
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.publisher = publisher

    @classmethod
    def from_clients(cls, settings: DifferSettings, *, sns: Any, dynamodb: Any) -> DifferService:
        """The service over boto3 clients."""
        return cls(
            settings,
            ledger=DynamoNewsLedger(dynamodb, settings.control_table),
            publisher=SnsPublisher(sns, settings.topic_arn),
        )

    def handle(self, event: Mapping[str, Any]) -> dict[str, list[dict[str, str]]]:
        """Publish the batch's news; on failure, report the first record to retry from.

        The stream retries from the lowest reported sequence number; news published before
        the failure is in the ledger, so the retry does not publish it again.
        """
        batch = read_stream(event.get("Records", []))
        events = news_from_changes(
            batch.changes, notify_first_seen=self.settings.notify_on_first_seen
        )
        outcome = publish_news(events, self.ledger, self.publisher)
        for group in outcome.published:
            metrics.add_metric(name="NotificationsPublished", unit=MetricUnit.Count, value=1)
            logger.info(
                "published",
                extra={
                    "event": group.type.value,
                    "version": group.version,
                    "devices": group.device_count,
                },
            )
        if not outcome.failed:
            return {"batchItemFailures": []}
        logger.error("publishing failed", extra={"errors": outcome.errors})
        first = batch.first_sequence((e.device_id, e.channel) for e in outcome.failed)
        return {"batchItemFailures": [{"itemIdentifier": first}]}
