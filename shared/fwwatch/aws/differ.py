"""The differ's service: the table's stream turned into each run's news, kept for its digest.

A stream batch's news is written to the run table under the run that wrote each state (the
state item names it), not published: the digest publishes a run's news once per release
(:mod:`fwwatch.aws.digest`). A replayed batch writes the same items again.

Then, per run of the batch, one write notes that the run has news, and answers what the
run's progress is; from it the differ asks for the digest the run still needs:

- at the run's first news, a deadline digest ``DIGEST_DEADLINE_S`` later: a run whose check
  never completes (a message dead-lettered) is digested all the same;
- when the run was digested already, a follow-up ``DIGEST_DELAY_S`` later (late news: a
  lagging stream, a device settled after the digest), which publishes only what is new.
  Each batch of late news asks; the first digest to start covers every request asked
  before it, and the others are dropped unread (``news_seq``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from ..events import FirmwareEvent
from ..messages import DigestReason, DigestRequest
from ..news import news_from_changes
from ..state import ChannelKey, ChannelState
from .observability import logger, metrics
from .queue_sqs import SqsDigestQueue
from .run_table import DynamoRunTable, RunProgress
from .settings import DifferSettings
from .stream import read_stream

__all__ = ["DifferService", "RunNews", "run_of"]


class RunNews(Protocol):
    """Where each run's news waits for its digest (the run table)."""

    def add_news(self, run_id: str, events: Sequence[FirmwareEvent]) -> None: ...

    def note_news(self, run_id: str) -> RunProgress: ...

    def note_deadline_sent(self, run_id: str) -> None: ...


class DigestQueue(Protocol):
    def send(self, requests: Sequence[DigestRequest]) -> None: ...


def run_of(state: ChannelState) -> str:
    """The run a state belongs to; a state written without one joins its day's own run."""
    return state.run_id or f"unscheduled-{state.last_changed:%Y-%m-%d}"


class DifferService:
    """Turn a batch of state changes from the table's stream into each run's news."""

    def __init__(
        self,
        settings: DifferSettings,
        *,
        runs: RunNews,
        digests: DigestQueue,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.runs = runs
        self.digests = digests
        self._clock = clock

    @classmethod
    def from_clients(cls, settings: DifferSettings, *, sqs: Any, dynamodb: Any) -> DifferService:
        """The service over boto3 clients."""
        return cls(
            settings,
            runs=DynamoRunTable(dynamodb, settings.run_table),
            digests=SqsDigestQueue(sqs, settings.digest_queue_url),
        )

    def handle(self, event: Mapping[str, Any]) -> dict[str, list[dict[str, str]]]:
        """Keep the batch's news per run; on failure, report the first record to retry from.

        The stream retries from the lowest reported sequence number; the news kept before
        the failure is written again, the same items.
        """
        batch = read_stream(event.get("Records", []))
        news: dict[str, list[tuple[FirmwareEvent, ChannelKey]]] = {}
        for old, new in batch.changes:
            for found in news_from_changes(
                [(old, new)], notify_first_seen=self.settings.notify_on_first_seen
            ):
                news.setdefault(run_of(new), []).append((found, new.key))
        failed: list[ChannelKey] = []
        for run_id, items in news.items():
            try:
                self._keep(run_id, [found for found, _ in items])
            except (ClientError, BotoCoreError, RuntimeError) as exc:
                logger.error(f"could not keep the run's news: {exc}", extra={"run": run_id})
                failed += [key for _, key in items]
        if not failed:
            return {"batchItemFailures": []}
        return {"batchItemFailures": [{"itemIdentifier": batch.first_sequence(failed)}]}

    def _keep(self, run_id: str, events: list[FirmwareEvent]) -> None:
        self.runs.add_news(run_id, events)
        progress = self.runs.note_news(run_id)
        now = int(self._clock())
        requests = []
        # A run already complete has its digest on the way: no deadline is needed.
        deadline_wanted = not progress.deadline_sent and progress.completed_at is None
        if deadline_wanted:
            first_news = progress.news_at or now
            due = first_news + self.settings.digest_deadline_s
            requests.append(
                DigestRequest(run_id=run_id, reason=DigestReason.DEADLINE, not_before=due)
            )
        if progress.digest_started_at is not None:
            due = now + self.settings.digest_delay_s
            requests.append(
                DigestRequest(
                    run_id=run_id,
                    reason=DigestReason.LATE,
                    not_before=due,
                    news_seq=progress.news_seq,
                )
            )
        if requests:
            self.digests.send(requests)
        if deadline_wanted:
            self.runs.note_deadline_sent(run_id)
        metrics.add_metric(name="NewsKept", unit=MetricUnit.Count, value=len(events))
        logger.info(
            "news kept for the run's digest",
            extra={
                "run": run_id,
                "news": len(events),
                "late": progress.digest_started_at is not None,
            },
        )
