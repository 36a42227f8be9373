"""The one dedupe rule, in both stores: the same news is not told twice within the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fwwatch.events import NEWS_DEDUPE_WINDOW, EventType, FirmwareEvent
from fwwatch.local.store_sqlite import SqliteStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def offer(at: datetime) -> FirmwareEvent:
    return FirmwareEvent(
        type=EventType.UPDATE_AVAILABLE,
        device_id="dev001",
        channel=0,
        current_version="1.0",
        target_version="1.1",
        occurred_at=at,
    )


def queue(store: SqliteStore, at: datetime) -> int:
    """The same change (observed at T0) stored again at ``at``, as a replay would."""
    return store.save_batch(
        states=[], events=[offer(T0)], checks=[], notifiers=["console"], run_id="r", now=at
    )


@pytest.mark.parametrize(
    ("later", "queued_again"),
    [(timedelta(days=1), False), (NEWS_DEDUPE_WINDOW - timedelta(days=1), False),
     (NEWS_DEDUPE_WINDOW + timedelta(days=1), True)],
    ids=["a day later", "just inside the window", "past the window"],
)  # fmt: skip
def test_the_outbox_tells_the_same_news_again_only_past_the_window(
    later: timedelta, queued_again: bool, tmp_path: Path
) -> None:
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        # Given news queued and delivered
        assert queue(store, T0) == 1
        (pending,) = store.pending("console")
        store.mark_delivered("console", [pending.outbox_id], T0)
        # When the same change is stored again later
        queued = queue(store, T0 + later)
        # Then it is queued again (and pending for the notifier) only past the window
        assert queued == int(queued_again)
        assert len(store.pending("console")) == int(queued_again)
