"""The digest's service: a run's news, published once per release.

Each SQS record is a :class:`~fwwatch.messages.DigestRequest`. One that arrives before it is
due (SQS holds a message back 15 minutes at most) is sent on again, unless it is a deadline
and the run was digested meanwhile; a follow-up that a later digest covered is dropped. A
due one takes the run's lease (one digest of a run at a time; the first also marks the run
digested, so that news recorded after it asks for a follow-up), then:

1. reads the run's news, drops what the news ledger says was told already (in this run or
   an earlier one), and groups the rest per release (:func:`~fwwatch.events.group_events`);
2. publishes each release: one message, or parts when it is over SNS's size limit. Before
   the first part, the release's record (in the run table) says how many parts this round
   has; after each part, the part's news goes into the ledger and the record counts it out.
   A retry, after SNS or a write failed, resumes with the first part that did not go out;
3. with ``DIGEST_PER_RUN``, publishes one more message listing every release just told.

A release told before in this run is told again only with its new devices, as a follow-up.
Any failure fails the record: SQS gives it again, after its visibility timeout, and after
five receives moves it to the dead-letter queue (an alarm).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from ..events import EventGroup, group_events
from ..messages import (
    DigestReason,
    DigestRequest,
    ReleasePart,
    RunDigestMessage,
)
from ..news import NewsLedger
from ..render import release_summary
from .ledger_dynamodb import DynamoNewsLedger
from .observability import logger, metrics
from .publish_sns import SnsPublisher
from .queue_sqs import SqsDigestQueue
from .run_table import DIGEST_LEASE_S, DynamoRunTable, LeaseHeld, ReleaseRecord, release_key
from .settings import DigestSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

__all__ = ["DigestFailed", "DigestService"]

#: Tries of a write that records what went out, before the record fails (and a retry
#: would send that part again).
MARK_ATTEMPTS = 5

T = TypeVar("T")


class DigestFailed(Exception):
    """Part of a run's news could not be published; the request is retried."""


@dataclass
class DigestOutcome:
    """What one digest of a run did."""

    published: list[ReleasePart] = field(default_factory=list)
    run_messages: int = 0
    errors: list[str] = field(default_factory=list)


class DigestService:
    """Publish a run's news: once per release, follow-ups for what came later."""

    def __init__(
        self,
        settings: DigestSettings,
        *,
        runs: DynamoRunTable,
        ledger: NewsLedger,
        topic: SnsPublisher,
        queue: SqsDigestQueue,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.runs = runs
        self.ledger = ledger
        self.topic = topic
        self.queue = queue
        self._clock = clock
        self._sleep = sleep

    @classmethod
    def from_clients(
        cls, settings: DigestSettings, *, sns: Any, sqs: Any, dynamodb: Any
    ) -> DigestService:
        """The service over boto3 clients."""
        return cls(
            settings,
            runs=DynamoRunTable(dynamodb, settings.run_table),
            ledger=DynamoNewsLedger(dynamodb, settings.control_table),
            topic=SnsPublisher(sns, settings.topic_arn),
            queue=SqsDigestQueue(sqs, settings.digest_queue_url),
        )

    def handle(self, event: Mapping[str, Any], context: Any = None) -> PartialItemFailureResponse:
        """Process an SQS batch of digest requests; failed records are reported."""
        from aws_lambda_powertools.utilities.batch import (
            BatchProcessor,
            EventType,
            process_partial_response,
        )

        return process_partial_response(
            event=dict(event),
            record_handler=self.digest_record,
            processor=BatchProcessor(event_type=EventType.SQS),
            context=context,
        )

    def digest_record(self, record: SQSRecord) -> dict[str, Any]:
        request = DigestRequest.model_validate_json(record.body)
        logger.append_keys(run_id=request.run_id)
        return self.answer(request)

    def answer(self, request: DigestRequest) -> dict[str, Any]:
        """Act on one request: send it on when early, else digest the run."""
        now = self._clock()
        if request.not_before - now > 1:
            if (
                request.reason is DigestReason.DEADLINE
                and self.runs.progress(request.run_id).digest_started_at is not None
            ):
                return {"outcome": "digested already"}
            self.queue.send([request])
            return {"outcome": "not due yet"}
        if request.news_seq and self.runs.progress(request.run_id).digested_seq >= request.news_seq:
            return {"outcome": "covered by a later digest"}
        owner = uuid.uuid4().hex
        try:
            self.runs.take_lease(request.run_id, owner, DIGEST_LEASE_S)
        except LeaseHeld as held:
            again = DigestRequest(
                run_id=request.run_id,
                reason=DigestReason.BUSY,
                not_before=int((held.until or now) + 1),
                news_seq=request.news_seq,
            )
            self.queue.send([again])
            logger.info("another digest of the run is under way: asked again after it")
            return {"outcome": "busy"}
        try:
            outcome = self.digest(request.run_id)
        finally:
            self.runs.release_lease(request.run_id, owner)
        for told in outcome.published:
            metrics.add_metric(name="NotificationsPublished", unit=MetricUnit.Count, value=1)
            logger.info(
                "published",
                extra={
                    "event": told.type.value,
                    "version": told.version,
                    "devices": told.release_devices,
                    "part": told.part,
                    "parts": told.parts,
                    "follow_up": told.follow_up,
                },
            )
        if outcome.errors:
            logger.error("digest incomplete", extra={"errors": outcome.errors})
            raise DigestFailed("; ".join(outcome.errors))
        return {
            "outcome": "digested",
            "messages": len(outcome.published) + outcome.run_messages,
            "releases": len({release_key(told) for told in outcome.published}),
        }

    def digest(self, run_id: str) -> DigestOutcome:
        """Publish what the run's news holds that was not told yet (the lease held)."""
        outcome = DigestOutcome()
        unique = {event.dedupe_key: event for event in self.runs.news(run_id)}
        told = self.ledger.published(list(unique)) if unique else set()
        fresh = [event for key, event in unique.items() if key not in told]
        records = self.runs.releases(run_id)
        for group in group_events(fresh):
            key = release_key(group)
            try:
                records[key] = self._publish_release(
                    run_id, group, records.get(key) or ReleaseRecord(key), outcome
                )
            except Exception as exc:  # SNS or a write: the rest goes on, the record fails
                outcome.errors.append(f"{key}: {type(exc).__name__}: {exc}")
        if self.settings.digest_per_run:
            try:
                self._announce(run_id, records, outcome)
            except Exception as exc:
                outcome.errors.append(f"the run's message: {type(exc).__name__}: {exc}")
        return outcome

    def _publish_release(
        self, run_id: str, group: EventGroup, record: ReleaseRecord, outcome: DigestOutcome
    ) -> ReleaseRecord:
        if record.open:
            # A round cut short: its parts that went out are in the ledger, so ``group`` is
            # what is left of it (and any news that came since).
            parts = group.split(record.per_part)
            resumed = replace(
                record,
                parts=record.done + len(parts),
                devices=record.done * record.per_part + group.device_count,
            )
            if resumed != record:
                self.runs.save_release(run_id, resumed, was=record)
                record = resumed
        else:
            per_part = self.topic.devices_per_message(group)
            parts = group.split(per_part)
            whole = ReleasePart.of(group, follow_up=record.rounds > 0, run_id=run_id)
            started = record.next_round(
                parts=len(parts),
                per_part=per_part,
                devices=group.device_count,
                summary=release_summary(whole),
            )
            self.runs.save_release(run_id, started, was=record)
            record = started
        for part in parts:
            message = ReleasePart.of(
                part,
                release_devices=record.devices,
                part=record.done + 1,
                parts=record.parts,
                follow_up=record.rounds > 1,
                run_id=run_id,
            )
            self.topic.publish_one(message)
            outcome.published.append(message)
            out = replace(record, done=record.done + 1)
            keys = [event.dedupe_key for event in part.events]
            self._marking(partial(self.ledger.record, keys))
            self._marking(partial(self.runs.save_release, run_id, out, was=record))
            record = out
        return record

    def _announce(
        self, run_id: str, records: dict[str, ReleaseRecord], outcome: DigestOutcome
    ) -> None:
        """One message listing every release whose latest round is out and not yet listed."""
        pending = [
            record
            for record in sorted(records.values(), key=lambda r: r.release)
            if record.rounds > record.announced and not record.open and record.summary
        ]
        summaries = [record.summary for record in pending if record.summary is not None]
        if not summaries:
            return
        self.topic.publish_run(
            RunDigestMessage(
                run_id=run_id,
                follow_up=all(summary.follow_up for summary in summaries),
                releases=summaries,
            )
        )
        outcome.run_messages += 1
        for record in pending:
            listed = replace(record, announced=record.rounds)
            self._marking(partial(self.runs.save_release, run_id, listed, was=record))
            records[record.release] = listed

    def _marking(self, write: Callable[[], T]) -> T:
        """A write that records what went out, tried again on AWS errors before giving up:
        a part whose record is lost would be published again by the retry."""
        for attempt in range(1, MARK_ATTEMPTS + 1):
            try:
                return write()
            except (ClientError, BotoCoreError, RuntimeError) as exc:
                if attempt == MARK_ATTEMPTS:
                    raise
                logger.warning(f"recording what was published failed, trying again: {exc}")
                self._sleep(min(2.0, 0.1 * 2**attempt))
        raise AssertionError("unreachable")
