"""The scheduler's service: a run's devices (configured, or listed) onto the check queue.

A run is listed in steps, one invocation each (:mod:`fwwatch.aws.listing_dynamodb`). The
scheduled invocation is step 0: it sends check messages page by page as it lists
(:func:`fwwatch.fanout.fan_out`), so the checks start while the listing goes on, and
watches its remaining time. Before the time runs out, it writes where the listing stands
and hands on to the next step, a message on the listing queue that this same function
consumes; the last step sends the run's last message, which carries the run's number of
messages. A run of any size is listed once, each device in one message.

Runs are idempotent: a run is named after its scheduled time (or the Scheduler's execution
ID, or for an invocation by hand, its request ID), and its first step is a conditional
write of the run's listing item. An invocation retried with the same name finds the item
and sends nothing, unless the step before it died, when it takes the step over and goes on
from the step's last checkpoint.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..fanout import ConfiguredDevices, FanOutResult, ListingCheckpoint, PageLister, fan_out
from ..messages import CheckMessage, ListingContinuation
from .listing_dynamodb import DynamoRunListing, LeaseLost, ListingRecord, ListingTaken
from .observability import logger, metrics
from .queue_sqs import SqsCheckQueue, SqsListingQueue
from .run_table import DynamoRunTable
from .runtime import run_async
from .secrets import SecretReader, powertools_secret
from .settings import SchedulerSettings
from .tuya_access import TuyaAccess

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

__all__ = ["CheckQueue", "ListingQueue", "RunListing", "RunRequest", "SchedulerService"]

#: Seconds a step's lease outlasts the invocation's remaining time: no other step takes the
#: listing while this one may still run, and a retry after a timeout finds it free.
LEASE_MARGIN_S = 5
#: A step's lease when there is no Lambda deadline (a script, a benchmark).
UNTIMED_LEASE_S = 900

RemainingMs = Callable[[], int]


class CheckQueue(Protocol):
    """Where check messages go (SQS)."""

    def send(self, messages: Sequence[CheckMessage], *, delay_s: int = 0) -> int:
        """Send the messages; returns the requests made."""
        ...


class ListingQueue(Protocol):
    """Where a run's listing is handed on to its next step (SQS)."""

    def send(self, continuation: ListingContinuation) -> None: ...


class RunListing(Protocol):
    """The runs' listing items (the run table)."""

    def read(self, run_id: str) -> ListingRecord | None: ...

    def claim(self, run_id: str, step: int, *, owner: str, lease_s: int) -> ListingRecord: ...

    def save(
        self, run_id: str, step: int, *, owner: str, checkpoint: ListingCheckpoint
    ) -> None: ...

    def hand_off(
        self, run_id: str, step: int, *, owner: str, checkpoint: ListingCheckpoint
    ) -> None: ...

    def note_sent(self, run_id: str, step: int) -> None: ...

    def finish(self, run_id: str, step: int, *, owner: str, parts: int, devices: int) -> None: ...

    def release(self, run_id: str, step: int, *, owner: str) -> None: ...


class RunRequest(BaseModel):
    """The schedule's event (template.yaml's ``Input``), or an invocation by hand (``{}``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str | None = Field(default=None, max_length=64)
    execution_id: str | None = Field(default=None, max_length=64)

    @field_validator("run_id", "execution_id", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return (value.strip() or None) if isinstance(value, str) else value

    def run_name(self, request_id: str) -> str:
        """The run's ID: the scheduled time, which every retry of an invocation shares; else
        the Scheduler's execution ID; else (by hand) the invocation's own request ID."""
        return self.run_id or self.execution_id or request_id[:12]


@dataclass(frozen=True)
class _Deadline:
    """When a step stops listing: its invocation's remaining time, less a reserve."""

    remaining_ms: RemainingMs | None
    reserve_ms: int

    def time_for_another_page(self) -> bool:
        return self.remaining_ms is None or self.remaining_ms() > self.reserve_ms

    def lease_s(self) -> int:
        if self.remaining_ms is None:
            return UNTIMED_LEASE_S
        return self.remaining_ms() // 1000 + LEASE_MARGIN_S


class SchedulerService:
    """List a run's devices (configured, or every device of the project) onto the queue."""

    def __init__(
        self,
        settings: SchedulerSettings,
        *,
        queue: CheckQueue,
        tuya: TuyaAccess,
        listings: RunListing,
        continuations: ListingQueue,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.tuya = tuya
        self.listings = listings
        self.continuations = continuations
        self.clock = clock

    @classmethod
    def from_clients(
        cls,
        settings: SchedulerSettings,
        *,
        sqs: Any,
        dynamodb: Any,
        read_secret: SecretReader = powertools_secret,
        transport: Any = None,
    ) -> SchedulerService:
        """The service over boto3 clients (and, in tests, an HTTP transport for Tuya)."""
        return cls(
            settings,
            queue=SqsCheckQueue(sqs, settings.check_queue_url),
            tuya=TuyaAccess(
                settings,
                # The listing runs beside the checks: it takes its share of the ceiling.
                qps=settings.listing_qps,
                dynamodb=dynamodb,
                rate_share="scheduler",
                read_secret=read_secret,
                transport=transport,
            ),
            listings=DynamoRunListing(DynamoRunTable(dynamodb, settings.run_table)),
            continuations=SqsListingQueue(sqs, settings.listing_queue_url),
        )

    def handle(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """The schedule's event (a run to start) or the listing queue's (a run to go on
        listing): what was enqueued, or the batch's failed records."""
        if "Records" in event:
            return dict(self.go_on(event, context))
        request = RunRequest.model_validate(dict(event))
        return self.run(
            request.run_name(context.aws_request_id),
            remaining_ms=context.get_remaining_time_in_millis,
        )

    def run(
        self, run_id: str | None = None, *, remaining_ms: RemainingMs | None = None
    ) -> dict[str, Any]:
        """Step 0 of a run (a new run ID when none is given): ``{"run_id", "step",
        "devices", "messages", "source", "listing"}``, what this invocation enqueued.

        ``remaining_ms`` is the invocation's remaining time (Lambda's context); without it
        the step lists to the end.
        """
        return self._step(run_id or uuid.uuid4().hex[:12], 0, remaining_ms)

    def go_on(self, event: Mapping[str, Any], context: Any) -> PartialItemFailureResponse:
        """The listing queue's batch: each record is the next step of a run's listing."""
        # Imported here: the scheduled invocation, the usual one, does without.
        from aws_lambda_powertools.utilities.batch import (
            BatchProcessor,
            EventType,
            process_partial_response,
        )

        def step(record: SQSRecord) -> dict[str, Any]:
            message = ListingContinuation.model_validate_json(record.body)
            return self._step(message.run_id, message.step, context.get_remaining_time_in_millis)

        return process_partial_response(
            event=dict(event),
            record_handler=step,
            processor=BatchProcessor(event_type=EventType.SQS),
            context=context,
        )

    def _step(self, run_id: str, step: int, remaining_ms: RemainingMs | None) -> dict[str, Any]:
        logger.append_keys(run_id=run_id, listing_step=step)
        source = "parameter" if self.settings.configured_ids else "discovery"
        answer: dict[str, Any] = {
            "run_id": run_id,
            "step": step,
            "devices": 0,
            "messages": 0,
            "source": source,
        }
        deadline = _Deadline(remaining_ms, reserve_ms=int(self.settings.step_reserve_s * 1000))
        owner = uuid.uuid4().hex
        try:
            record = self.listings.claim(run_id, step, owner=owner, lease_s=deadline.lease_s())
        except ListingTaken as taken:
            return answer | {"listing": self._not_taken(run_id, step, taken.record)}
        try:
            result = run_async(self._list(run_id, step, owner, record.checkpoint, deadline))
            answer |= {"devices": result.devices, "messages": result.messages}
            metrics.add_metric(name="DevicesScheduled", unit=MetricUnit.Count, value=result.devices)
            if result.finished:
                return answer | self._finish(run_id, step, owner, result.checkpoint)
            self.listings.hand_off(run_id, step, owner=owner, checkpoint=result.checkpoint)
            self._send_on(run_id, step + 1)
        except LeaseLost as exc:
            logger.warning(f"stopped listing: {exc}")
            return answer | {"listing": "taken over"}
        except BaseException:
            # Given back at once: a retry of this invocation goes on from the checkpoint
            # (or, when the step had handed on already, sends its message on).
            try:
                self.listings.release(run_id, step, owner=owner)
            except Exception as exc:  # the lease runs out by itself
                logger.warning(f"could not give the listing back: {exc}")
            raise
        logger.info(
            "listing handed on",
            extra={"listed": result.checkpoint.listed, "next_step": step + 1},
        )
        return answer | {"listing": "handed on"}

    def _finish(
        self, run_id: str, step: int, owner: str, checkpoint: ListingCheckpoint
    ) -> dict[str, Any]:
        parts = checkpoint.next_part
        self.listings.finish(run_id, step, owner=owner, parts=parts, devices=checkpoint.listed)
        logger.info("run scheduled", extra={"devices": checkpoint.listed, "messages": parts})
        return {"listing": "finished", "parts": parts}

    async def _list(
        self,
        run_id: str,
        step: int,
        owner: str,
        start: ListingCheckpoint,
        deadline: _Deadline,
    ) -> FanOutResult:
        def save(checkpoint: ListingCheckpoint) -> None:
            self.listings.save(run_id, step, owner=owner, checkpoint=checkpoint)

        async def list_from(lister: PageLister) -> FanOutResult:
            return await fan_out(
                lister,
                run_id=run_id,
                start=start,
                per_message=self.settings.devices_per_message,
                send=self.queue.send,
                save=save,
                go_on=deadline.time_for_another_page,
            )

        if configured := self.settings.configured_ids:
            return await list_from(ConfiguredDevices(configured))
        async with self.tuya.client() as client:
            try:
                return await list_from(client)
            finally:
                self.tuya.keep_learned_rate(client)

    def _not_taken(self, run_id: str, step: int, record: ListingRecord | None) -> str:
        """Why the step was not taken, and the continuation sent again if it may be lost."""
        if record is None:
            logger.warning("no listing of the run is known (expired?): nothing to go on with")
            return "unknown run"
        if record.finished:
            logger.info("the run's listing is finished already: nothing sent")
            return "finished already"
        lost = record.sent_step != record.step and not record.under_way(self.clock())
        if record.step == step + 1 and lost:
            # This step handed on, and died before its message was known to be out: send it
            # again (if it was out, the duplicate finds the step taken, and does nothing).
            self._send_on(run_id, record.step)
            logger.info("the step was handed on, its message maybe lost: sent again")
            return "handed on already"
        logger.info("the run's listing is under way or handed on: nothing sent")
        return "under way"

    def _send_on(self, run_id: str, step: int) -> None:
        self.continuations.send(ListingContinuation(run_id=run_id, step=step))
        self.listings.note_sent(run_id, step)
