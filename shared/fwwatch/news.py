"""From state changes to news that is told once: the one identity and lifetime rule.

The same news has the same :attr:`~fwwatch.events.FirmwareEvent.dedupe_key`, and is not told
again within :data:`~fwwatch.events.NEWS_DEDUPE_WINDOW`. Both modes keep that rule: the
local outbox (SQLite) and the digest's ledger (DynamoDB).

Two ports carry news out, on purpose different:

- :class:`Publisher` (e.g. SNS) is synchronous and publishes one group to one topic;
  subscribers (e-mail, the Slack function) fan out behind it, and :func:`publish_news`
  records what went out in a :class:`NewsLedger`. On AWS the digest
  (:mod:`fwwatch.aws.digest`) publishes a run's groups itself, recording each part of a
  group in the ledger as it goes out, so that a retry sends none of them again.
- :class:`fwwatch.notify.Notifier` (local mode's port: console, Slack, e-mail, JSON lines) is
  asynchronous, named (each delivery is recorded per notifier in the outbox, so one that
  fails is retried alone) and can send a test message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .events import EventGroup, FirmwareEvent, diff, group_events
from .state import StateChange

__all__ = ["NewsLedger", "PublishOutcome", "Publisher", "news_from_changes", "publish_news"]


def news_from_changes(
    changes: Iterable[StateChange], *, notify_first_seen: bool = False
) -> list[FirmwareEvent]:
    """The events of ``(old, new)`` state pairs: a settled batch's, or a stream batch's."""
    events: list[FirmwareEvent] = []
    for old, new in changes:
        events.extend(diff(old, new, notify_first_seen=notify_first_seen))
    return events


class NewsLedger(Protocol):
    """Remembers which news was published, so that none is published twice."""

    def published(self, keys: Sequence[str]) -> set[str]:
        """Which of these dedupe keys were published within the dedupe window."""
        ...

    def record(self, keys: Sequence[str]) -> None:
        """Remember these dedupe keys as published."""
        ...


class Publisher(Protocol):
    """Publishes one group of news (one message) to a topic."""

    def publish(self, group: EventGroup) -> None:
        """Publish, or raise."""
        ...


@dataclass
class PublishOutcome:
    """What :func:`publish_news` did."""

    published: list[EventGroup] = field(default_factory=list)
    duplicates: int = 0
    failed: list[FirmwareEvent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def publish_news(
    events: Sequence[FirmwareEvent], ledger: NewsLedger, publisher: Publisher
) -> PublishOutcome:
    """Group the events, drop news already published, publish the rest, remember it.

    A group that fails to publish is not recorded: its events come back in ``failed`` so the
    caller can have the batch retried; news published before the failure is recorded and
    will not be sent again.
    """
    outcome = PublishOutcome()
    unique = {event.dedupe_key: event for event in events}
    seen = ledger.published(list(unique))
    outcome.duplicates = len(events) - len(unique) + len(seen)
    fresh = [event for key, event in unique.items() if key not in seen]
    for group in group_events(fresh):
        try:
            publisher.publish(group)
        except Exception as exc:  # any publish failure: keep the news for the retry
            outcome.failed.extend(group.events)
            outcome.errors.append(f"{type(exc).__name__}: {exc}")
            continue
        ledger.record([event.dedupe_key for event in group.events])
        outcome.published.append(group)
    return outcome
