"""The run table: each run's progress, its news waiting for the digest, what was published.

One partition per run (``run_id``), four kinds of items (``sk``), all expiring by TTL:

- ``run``, the progress: the check messages the run planned (``parts``, written with the
  run's last message, and the retries sent) and those settled, as string sets of
  :attr:`~fwwatch.messages.CheckMessage.progress_key` (a redelivered message is added
  again, and counts once); whether a checker wrote a
  channel state for the run (``has_changes``: the digest is wanted at completion); when the
  differ first recorded news (``news_at``) and whether the deadline digest was asked for;
  the digest's lease and when it first ran (``digest_started_at``: news recorded after that
  is late, and asks for a follow-up). ``news_seq`` counts the differ's news writes and
  ``digested_seq`` is its value when the latest digest started: a follow-up asked for at
  a count the latest digest had reached is covered already.
- ``news#<release>#<device>#<channel>#<news>``, one piece of news of the run, written by the
  differ (a replayed stream batch writes the same item again). ``<release>`` is the
  (event, product, channel, version) of :func:`~fwwatch.events.group_events`.
- ``release#<release>``, what the digest published of one release: rounds (the first
  message, then each follow-up) and, of the latest, how many parts were planned and are out.
- ``listing``, the scheduler's listing of the run: the step under way and its lease, where
  the listing stands, and when it finished (:mod:`fwwatch.aws.listing_dynamodb`). It is
  the run's idempotency record too: a retried invocation of the run finds it.

Which news was published stays in the news ledger (:mod:`fwwatch.aws.ledger_dynamodb`):
the same news is told once across runs too.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from ..events import EventGroup, FirmwareEvent
from ..messages import ReleaseSummary, progress_key
from .dynamo import batch_write, from_dynamo, to_dynamo

__all__ = [
    "DIGEST_LEASE_S",
    "KEEP_S",
    "DynamoRunTable",
    "ReleaseRecord",
    "RunProgress",
    "release_key",
]

#: How long a run's items are kept (the table's TTL removes them): well past any deadline.
KEEP_S = 14 * 86400
#: The lease of a run's digest: longer than the digest function's timeout (300 s), so that
#: a digest never runs on after its lease, and a crashed one frees the run soon after.
DIGEST_LEASE_S = 360

PROGRESS = "run"
NEWS = "news#"
RELEASE = "release#"


def release_key(group: EventGroup | FirmwareEvent) -> str:
    """A release's name in the table: ``type#product#channel#version``."""
    return f"{group.type.value}#{group.product_id or '-'}#{group.channel}#{group.version}"


def _news_sk(event: FirmwareEvent) -> str:
    news = hashlib.sha256(event.dedupe_key.encode()).hexdigest()[:16]
    return f"{NEWS}{release_key(event)}#{event.device_id}#{event.channel}#{news}"


@dataclass(frozen=True)
class RunProgress:
    """The progress item of a run, as read."""

    run_id: str
    parts: int = 0
    settled: frozenset[str] = frozenset()
    retries: frozenset[str] = frozenset()
    has_changes: bool = False
    completed_at: int | None = None
    news_at: int | None = None
    deadline_sent: bool = False
    digest_started_at: int | None = None
    lease_until: int | None = None
    news_seq: int = 0
    digested_seq: int = 0

    @property
    def complete(self) -> bool:
        """The plan is known, and every planned message and every retry sent is settled.

        ``parts`` is written when the run's last message is settled, and the scheduler
        sends that message only once the listing is finished: a run cannot look complete
        while it is still being listed. A retry is added to the plan in the same write
        that settles the message it came from, so a run cannot look complete while a retry
        is still to be settled either.
        """
        if self.parts <= 0:
            return False
        planned = {progress_key(part, 1) for part in range(self.parts)} | self.retries
        return planned <= self.settled

    @classmethod
    def from_item(cls, run_id: str, item: dict[str, Any]) -> RunProgress:
        def number(name: str) -> int | None:
            value = item.get(name)
            return int(value) if isinstance(value, int | float) else None

        return cls(
            run_id=run_id,
            parts=number("parts") or 0,
            settled=frozenset(item.get("settled", ())),
            retries=frozenset(item.get("retries", ())),
            has_changes=bool(item.get("has_changes")),
            completed_at=number("completed_at"),
            news_at=number("news_at"),
            deadline_sent=bool(item.get("deadline_sent")),
            digest_started_at=number("digest_started_at"),
            lease_until=number("lease_until"),
            news_seq=number("news_seq") or 0,
            digested_seq=number("digested_seq") or 0,
        )


@dataclass(frozen=True)
class ReleaseRecord:
    """What the digest published of one release of a run."""

    release: str
    rounds: int = 0  # messages started: the first, then one per follow-up
    parts: int = 0  # of the latest round
    done: int = 0  # of its parts, published
    per_part: int = 0  # devices per part of the latest round
    devices: int = 0  # devices the latest round tells of
    announced: int = 0  # rounds listed in a run's digest message
    summary: ReleaseSummary | None = None  # the latest round, as the run's message lists it

    @property
    def open(self) -> bool:
        """A round was started and not all of its parts are out."""
        return self.done < self.parts

    def next_round(
        self, *, parts: int, per_part: int, devices: int, summary: ReleaseSummary
    ) -> ReleaseRecord:
        return replace(
            self,
            rounds=self.rounds + 1,
            parts=parts,
            done=0,
            per_part=per_part,
            devices=devices,
            summary=summary,
        )

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ReleaseRecord:
        summary = item.get("summary")
        return cls(
            release=str(item["sk"]).removeprefix(RELEASE),
            rounds=int(item.get("rounds", 0)),
            parts=int(item.get("parts", 0)),
            done=int(item.get("done", 0)),
            per_part=int(item.get("per_part", 0)),
            devices=int(item.get("devices", 0)),
            announced=int(item.get("announced", 0)),
            summary=ReleaseSummary.model_validate_json(summary) if summary else None,
        )


class LeaseHeld(Exception):
    """Another digest of the run holds its lease (until ``until``, Unix time)."""

    def __init__(self, until: int | None) -> None:
        super().__init__(f"another digest of the run holds the lease until {until}")
        self.until = until


class ReleaseTakenOver(Exception):
    """A release's record changed under this digest: its lease ran out, another took over."""


@dataclass
class DynamoRunTable:
    """The run table over the DynamoDB client."""

    client: Any
    table: str
    clock: Callable[[], float] = time.time
    keep_s: int = KEEP_S

    def _now(self) -> int:
        return int(self.clock())

    def key(self, run_id: str, sk: str = PROGRESS) -> dict[str, Any]:
        """The key of one item of the run (its progress by default)."""
        return to_dynamo({"run_id": run_id, "sk": sk})

    def update(
        self,
        run_id: str,
        expression: str,
        values: dict[str, Any] | None = None,
        *,
        condition: str | None = None,
        sk: str = PROGRESS,
        returns: str = "NONE",
    ) -> dict[str, Any]:
        """One UpdateItem on an item of the run that also keeps the item's TTL (set once,
        at its creation): the new item with ``returns="ALL_NEW"``."""
        values = {**(values or {}), ":ttl": self._now() + self.keep_s}
        ttl = "expires_at = if_not_exists(expires_at, :ttl)"
        if expression.startswith("SET "):
            expression = f"SET {ttl}, {expression.removeprefix('SET ')}"
        else:
            expression = f"SET {ttl} {expression}"
        request: dict[str, Any] = {
            "TableName": self.table,
            "Key": self.key(run_id, sk),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": to_dynamo(values),
            "ReturnValues": returns,
        }
        if condition:
            request["ConditionExpression"] = condition
        answer = self.client.update_item(**request)
        return from_dynamo(answer.get("Attributes", {}))

    def update_if(self, run_id: str, expression: str, values: dict[str, Any], **kw: Any) -> bool:
        """:meth:`update` with a ``condition``: whether it held (and the write was made)."""
        try:
            self.update(run_id, expression, values, **kw)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # ------------------------------------------------------------------ checkers

    def note_changes(self, run_id: str) -> None:
        """A checker is about to write channel states of the run: its digest is wanted."""
        self.update(run_id, "SET has_changes = :yes", {":yes": True})

    def settle(
        self,
        run_id: str,
        *,
        parts: int | None,
        settled: Iterable[str],
        retries: Iterable[str] = (),
    ) -> RunProgress:
        """Count messages settled and retries sent by one invocation, in one write; with
        ``parts`` (the run's last message was among them), the run's number of messages."""
        values: dict[str, Any] = {":settled": set(settled)}
        expression = "ADD settled :settled"
        if parts is not None:
            expression = "SET parts = if_not_exists(parts, :parts) " + expression
            values[":parts"] = parts
        if retries := set(retries):
            expression += ", retries :retries"
            values[":retries"] = retries
        item = self.update(run_id, expression, values, returns="ALL_NEW")
        return RunProgress.from_item(run_id, item)

    def claim_completion(self, run_id: str) -> bool:
        """The one checker that makes this write asks for the digest."""
        return self.update_if(
            run_id,
            "SET completed_at = :now",
            {":now": self._now()},
            condition="attribute_not_exists(completed_at)",
        )

    def release_completion(self, run_id: str) -> None:
        """Undo a claim whose digest request could not be sent (the next count claims it)."""
        self.update(run_id, "REMOVE completed_at")

    # ------------------------------------------------------------------ differ

    def add_news(self, run_id: str, events: Sequence[FirmwareEvent]) -> None:
        """Keep news for the run's digest (the same news again writes the same item)."""
        expires_at = self._now() + self.keep_s
        batch_write(
            self.client,
            self.table,
            (
                {
                    "run_id": run_id,
                    "sk": _news_sk(event),
                    "event": event.model_dump_json(),
                    "expires_at": expires_at,
                }
                for event in events
            ),
        )

    def note_news(self, run_id: str) -> RunProgress:
        """Record that the run has news (the first time is kept, and the writes counted),
        after the news itself was written: the run's progress, after."""
        item = self.update(
            run_id,
            "SET news_at = if_not_exists(news_at, :now) ADD news_seq :one",
            {":now": self._now(), ":one": 1},
            returns="ALL_NEW",
        )
        return RunProgress.from_item(run_id, item)

    def note_deadline_sent(self, run_id: str) -> None:
        self.update(run_id, "SET deadline_sent = :yes", {":yes": True})

    # ------------------------------------------------------------------ digest

    def progress(self, run_id: str) -> RunProgress:
        answer = self.client.get_item(
            TableName=self.table, Key=self.key(run_id), ConsistentRead=True
        )
        return RunProgress.from_item(run_id, from_dynamo(answer.get("Item", {})))

    def take_lease(self, run_id: str, owner: str, lease_s: int) -> RunProgress:
        """Become the run's one digest for ``lease_s`` seconds; raises :class:`LeaseHeld`.

        The first digest also marks the run digested (``digest_started_at``), before it
        reads the news: news the differ records after that asks for a follow-up.
        """
        now = self._now()
        try:
            item = self.update(
                run_id,
                "SET lease_owner = :me, lease_until = :until, "
                "digest_started_at = if_not_exists(digest_started_at, :now), "
                "digested_seq = if_not_exists(news_seq, :zero)",
                {":me": owner, ":until": now + lease_s, ":now": now, ":zero": 0},
                condition="attribute_not_exists(lease_until) OR lease_until < :now",
                returns="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            raise LeaseHeld(self.progress(run_id).lease_until) from None
        return RunProgress.from_item(run_id, item)

    def release_lease(self, run_id: str, owner: str) -> None:
        self.update_if(
            run_id,
            "SET digested_at = :now REMOVE lease_owner, lease_until",
            {":now": self._now(), ":me": owner},
            condition="lease_owner = :me",
        )

    def _query(self, run_id: str, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "run_id = :run AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": to_dynamo({":run": run_id, ":prefix": prefix}),
            "ConsistentRead": True,
        }
        while True:
            answer = self.client.query(**request)
            items += [from_dynamo(item) for item in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                return items
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def news(self, run_id: str) -> list[FirmwareEvent]:
        """Every piece of news recorded for the run."""
        return [
            FirmwareEvent.model_validate_json(item["event"]) for item in self._query(run_id, NEWS)
        ]

    def releases(self, run_id: str) -> dict[str, ReleaseRecord]:
        """What was published of each release of the run."""
        records = (ReleaseRecord.from_item(item) for item in self._query(run_id, RELEASE))
        return {record.release: record for record in records}

    def save_release(self, run_id: str, record: ReleaseRecord, *, was: ReleaseRecord) -> None:
        """Write a release's record if it is still ``was`` (a conditional write): a digest
        whose lease ran out cannot overwrite the one that took over."""
        values: dict[str, Any] = {
            ":rounds": record.rounds,
            ":parts": record.parts,
            ":done": record.done,
            ":per_part": record.per_part,
            ":devices": record.devices,
            ":announced": record.announced,
            ":was_rounds": was.rounds,
            ":was_done": was.done,
            ":was_announced": was.announced,
        }
        expression = (
            "SET rounds = :rounds, parts = :parts, done = :done, per_part = :per_part, "
            "devices = :devices, announced = :announced"
        )
        if record.summary is not None:
            expression += ", summary = :summary"
            values[":summary"] = record.summary.model_dump_json()
        condition = (
            "attribute_not_exists(rounds)"
            if was.rounds == 0
            else "rounds = :was_rounds AND done = :was_done AND announced = :was_announced"
        )
        if was.rounds == 0:
            for name in (":was_rounds", ":was_done", ":was_announced"):
                values.pop(name)
        if not self.update_if(
            run_id, expression, values, condition=condition, sk=RELEASE + record.release
        ):
            raise ReleaseTakenOver(f"the record of {record.release} changed under this digest")
