"""A run's listing in the run table: which step holds it, where it stands, when it ended.

One item per run (``sk`` ``listing``), beside the run's progress. A run is listed in steps,
one invocation each: step 0 is the scheduled invocation, and each step hands on to the
next (a message on the listing queue) before its time runs out. The item holds:

- ``step``, the step that holds the listing, or will: ``lease_owner`` and ``lease_until``
  while one is under way (a conditional write takes it, as the digest takes its lease);
- ``checkpoint``, where the listing stands (a :class:`~fwwatch.fanout.ListingCheckpoint`),
  written as the step sends its messages and when it hands on; ``sent_step``, the step
  whose message is known to be on the listing queue;
- ``listed_at``, ``parts`` and ``devices`` once the listing is finished: the run's plan.

The item is the run's idempotency record. Step 0 creates it with a conditional write, so
an invocation retried with the same run ID finds it and enqueues nothing; only when the
step before it died (its lease given back, or run out) does the retry take the step and go
on from its checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ..fanout import ListingCheckpoint
from .dynamo import from_dynamo
from .run_table import DynamoRunTable

__all__ = ["DynamoRunListing", "LeaseLost", "ListingRecord", "ListingTaken"]

LISTING = "listing"


@dataclass(frozen=True)
class ListingRecord:
    """The listing item of a run, as read."""

    run_id: str
    step: int = 0
    lease_owner: str | None = None
    lease_until: int | None = None
    checkpoint: ListingCheckpoint = field(default_factory=ListingCheckpoint)
    started_at: int | None = None
    sent_step: int | None = None
    listed_at: int | None = None
    parts: int | None = None
    devices: int | None = None

    @property
    def finished(self) -> bool:
        """Every device was listed and the run's last message sent."""
        return self.listed_at is not None

    def under_way(self, now: float) -> bool:
        """A step holds the listing now (its lease has not run out)."""
        return self.lease_until is not None and self.lease_until >= now

    @classmethod
    def from_item(cls, run_id: str, item: dict[str, Any]) -> ListingRecord:
        def number(name: str) -> int | None:
            value = item.get(name)
            return int(value) if isinstance(value, int | float) else None

        checkpoint = item.get("checkpoint")
        return cls(
            run_id=run_id,
            step=number("step") or 0,
            lease_owner=item.get("lease_owner"),
            lease_until=number("lease_until"),
            checkpoint=(
                ListingCheckpoint.model_validate_json(checkpoint)
                if checkpoint
                else ListingCheckpoint()
            ),
            started_at=number("started_at"),
            sent_step=number("sent_step"),
            listed_at=number("listed_at"),
            parts=number("parts"),
            devices=number("devices"),
        )


class ListingTaken(Exception):
    """The step is not this invocation's to take: done, under way, or handed on already."""

    def __init__(self, record: ListingRecord | None) -> None:
        super().__init__("the step of the run's listing is done, or under way elsewhere")
        self.record = record


class LeaseLost(Exception):
    """The step's lease ran out and another invocation took the listing over."""


@dataclass
class DynamoRunListing:
    """The listing items of the run table (over its :class:`DynamoRunTable`)."""

    runs: DynamoRunTable

    def _now(self) -> int:
        return int(self.runs.clock())

    def read(self, run_id: str) -> ListingRecord | None:
        """The run's listing item (``None``: the run was never scheduled, or expired)."""
        answer = self.runs.client.get_item(
            TableName=self.runs.table, Key=self.runs.key(run_id, LISTING), ConsistentRead=True
        )
        item = answer.get("Item")
        return None if item is None else ListingRecord.from_item(run_id, from_dynamo(item))

    def claim(self, run_id: str, step: int, *, owner: str, lease_s: int) -> ListingRecord:
        """Take step ``step`` of the run's listing for ``lease_s`` seconds: the record, with
        the checkpoint to go on from. Raises :class:`ListingTaken` when the step is done,
        under way in another invocation, or was never handed on (a stale message)."""
        now = self._now()
        free = "(attribute_not_exists(lease_until) OR lease_until < :now)"
        taken_over = f"(step = :step AND attribute_not_exists(listed_at) AND {free})"
        condition = f"attribute_not_exists(step) OR {taken_over}" if step == 0 else taken_over
        try:
            item = self.runs.update(
                run_id,
                "SET step = :step, lease_owner = :me, lease_until = :until, "
                "started_at = if_not_exists(started_at, :now)",
                {":step": step, ":me": owner, ":until": now + lease_s, ":now": now},
                condition=condition,
                sk=LISTING,
                returns="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            record = self.read(run_id)
            if record is not None and record.step == step and record.lease_owner == owner:
                # This claim went through and was sent again (botocore retries a call whose
                # answer was lost): the step is ours.
                return record
            raise ListingTaken(record) from None
        return ListingRecord.from_item(run_id, item)

    def _held(
        self,
        run_id: str,
        step: int,
        owner: str,
        expression: str,
        values: dict[str, Any],
        *,
        made: Callable[[ListingRecord], bool] | None = None,
    ) -> None:
        """A write of the step's holder; ``made`` tells, of the item after a refusal,
        whether the write was made already (the same write sent again, its answer lost)."""
        if self.runs.update_if(
            run_id,
            expression,
            {**values, ":step": step, ":me": owner},
            condition="step = :step AND lease_owner = :me",
            sk=LISTING,
        ):
            return
        if made is not None and (record := self.read(run_id)) is not None and made(record):
            return
        raise LeaseLost(f"step {step} of the listing of run {run_id} was taken over")

    def save(self, run_id: str, step: int, *, owner: str, checkpoint: ListingCheckpoint) -> None:
        """Keep where the step's listing stands (a retry of the step goes on from there)."""
        self._held(
            run_id, step, owner, "SET checkpoint = :at", {":at": checkpoint.model_dump_json()}
        )

    def hand_off(
        self, run_id: str, step: int, *, owner: str, checkpoint: ListingCheckpoint
    ) -> None:
        """End the step, giving the listing to step ``step + 1`` from ``checkpoint``."""
        self._held(
            run_id,
            step,
            owner,
            "SET step = :next, checkpoint = :at REMOVE lease_owner, lease_until",
            {":next": step + 1, ":at": checkpoint.model_dump_json()},
            # Only this step's holder moves the listing on while its lease lasts; at worst
            # (its lease ran out) the next step's message goes out twice, which is harmless.
            made=lambda record: record.step > step,
        )

    def note_sent(self, run_id: str, step: int) -> None:
        """The message of step ``step`` is on the listing queue: a retry of the step before
        it need not send it again."""
        self.runs.update(run_id, "SET sent_step = :step", {":step": step}, sk=LISTING)

    def finish(self, run_id: str, step: int, *, owner: str, parts: int, devices: int) -> None:
        """Record the finished listing: the run's number of messages and of devices."""
        self._held(
            run_id,
            step,
            owner,
            "SET listed_at = :now, parts = :parts, devices = :devices "
            "REMOVE lease_owner, lease_until, checkpoint",
            {":now": self._now(), ":parts": parts, ":devices": devices},
            made=lambda record: record.finished,
        )

    def release(self, run_id: str, step: int, *, owner: str) -> None:
        """Give the step back after an error, so that a retry may take it at once."""
        self.runs.update_if(
            run_id,
            "REMOVE lease_owner, lease_until",
            {":step": step, ":me": owner},
            condition="step = :step AND lease_owner = :me",
            sk=LISTING,
        )
