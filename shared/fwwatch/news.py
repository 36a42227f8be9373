"""From state changes to news that is told once: the one identity and lifetime rule.

The same news has the same :attr:`~fwwatch.events.FirmwareEvent.dedupe_key`, and is not told
again within :data:`~fwwatch.events.NEWS_DEDUPE_WINDOW`. Both modes keep that rule: the
local outbox (SQLite) and the digest's ledger (DynamoDB).

Two ports carry news out, on purpose different:

- the topic (:class:`fwwatch.aws.publish_sns.SnsPublisher`): the digest
  (:mod:`fwwatch.aws.digest`) publishes each release of a run once, in parts when it is
  large, and records each part in the run table and the :class:`NewsLedger` as it goes out,
  so that a retry sends none again; subscribers (e-mail, the Slack function) fan out behind;
- :class:`fwwatch.notify.Notifier` (local mode's port: console, Slack, e-mail, JSON lines) is
  asynchronous, named (each delivery is recorded per notifier in the outbox, so one that
  fails is retried alone) and can send a test message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from .events import FirmwareEvent, diff
from .state import StateChange

__all__ = ["NewsLedger", "news_from_changes"]


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
