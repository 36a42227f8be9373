"""State on one machine: channel states, the news waiting to be delivered, and run history.

One SQLite file. Each batch of devices is stored in one transaction together with the
events it produced (an outbox), so a run killed half-way loses nothing: the next run sends
what was stored but not yet delivered, and never sends the same news twice. It also keeps
what each MQTT broker was last given (``mqtt_retained``), so only what changed is published,
and, at the end of each run, how many device channels were on and offered each version
(``run_versions``): the fleet report's adoption over time.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..events import NEWS_DEDUPE_WINDOW, EventType, FirmwareEvent
from ..fleet_report import VersionTally
from ..homeassistant import Retained
from ..ignored import IgnoredVersion, IgnoredVersions
from ..state import ChannelKey, ChannelState, order_key

__all__ = ["PendingEvent", "SqliteStore", "default_state_path"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS channel_state (
    device_id   TEXT NOT NULL,
    channel     INTEGER NOT NULL,
    item        TEXT NOT NULL,
    observed_us INTEGER,
    PRIMARY KEY (device_id, channel)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_check (
    device_id    TEXT PRIMARY KEY,
    last_checked TEXT NOT NULL,
    ok           INTEGER NOT NULL,
    error        TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY,
    dedupe_key  TEXT NOT NULL UNIQUE,
    event       TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS delivery (
    outbox_id    INTEGER NOT NULL REFERENCES outbox(id),
    notifier     TEXT NOT NULL,
    delivered_at TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    PRIMARY KEY (outbox_id, notifier)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS learned_rate (
    endpoint    TEXT NOT NULL,
    access_id   TEXT NOT NULL,
    rps         REAL NOT NULL,
    learned_at  TEXT NOT NULL,
    PRIMARY KEY (endpoint, access_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS run (
    run_id      TEXT PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    report      TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ignored_version (
    product_id  TEXT NOT NULL,
    channel     INTEGER,  -- NULL: every channel of the product
    version     TEXT NOT NULL,
    added_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ignored_version_key
    ON ignored_version (product_id, coalesce(channel, -1), version);
-- The latest offer an ignore kept from being news, per device channel: told if the ignore goes.
CREATE TABLE IF NOT EXISTS held_news (
    device_id   TEXT NOT NULL,
    channel     INTEGER NOT NULL,
    product_id  TEXT NOT NULL,
    version     TEXT NOT NULL,
    dedupe_key  TEXT NOT NULL,
    event       TEXT NOT NULL,
    held_at     TEXT NOT NULL,
    PRIMARY KEY (device_id, channel)
) WITHOUT ROWID;
-- What a broker acknowledged last, per topic; an empty payload is a topic cleared. A state
-- file from before it gets the table when opened, as every table here.
CREATE TABLE IF NOT EXISTS mqtt_retained (
    broker       TEXT NOT NULL,
    topic        TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    payload      TEXT NOT NULL,
    published_at TEXT NOT NULL,
    PRIMARY KEY (broker, topic)
) WITHOUT ROWID;
-- At the end of each run, the device channels per product, channel and version: on it
-- (installed) and offered it. A state file from before it starts this history with its
-- next run; the channel states themselves keep only the latest of each device channel.
CREATE TABLE IF NOT EXISTS run_versions (
    run_id      TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    product_id  TEXT NOT NULL,
    channel     INTEGER NOT NULL,
    version     TEXT NOT NULL,
    installed   INTEGER NOT NULL,
    offered     INTEGER NOT NULL,
    PRIMARY KEY (run_id, product_id, channel, version)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_versions_by_time ON run_versions (finished_at);
"""


def default_state_path() -> Path:
    """``$XDG_STATE_HOME/fwwatch/state.sqlite3`` (``~/.local/state/...`` by default)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "fwwatch" / "state.sqlite3"


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """News stored in the outbox and not yet delivered by some notifier."""

    outbox_id: int
    event: FirmwareEvent


class SqliteStore:
    """Channel states, outbox and runs in one SQLite file (a ``RunStore`` of the runner)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        # Tables added since (ignored_version, held_news, mqtt_retained, run_versions) come
        # from SCHEMA's IF NOT EXISTS.
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(channel_state)")}
        if "observed_us" not in columns:  # a state file from before states were ordered
            self._db.execute("ALTER TABLE channel_state ADD COLUMN observed_us INTEGER")

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work: all of it is stored, or none."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------ state

    def load(self, device_ids: Iterable[str]) -> dict[ChannelKey, ChannelState]:
        """Every stored state of these devices."""
        ids = list(device_ids)
        found: dict[ChannelKey, ChannelState] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT item FROM channel_state WHERE device_id IN ({marks})",  # noqa: S608
                chunk,
            )
            for (item,) in rows:
                state = ChannelState.from_item(json.loads(item))
                found[state.key] = state
        return found

    def get_items(self, keys: Iterable[ChannelKey]) -> dict[ChannelKey, ChannelState]:
        """The stored states of these keys (a :class:`~fwwatch.cycle.StateReader`)."""
        wanted = set(keys)
        found = self.load({device_id for device_id, _ in wanted})
        return {key: state for key, state in found.items() if key in wanted}

    def load_all(self) -> list[ChannelState]:
        """Every stored state (for ``fwwatch status``)."""
        rows = self._db.execute("SELECT item FROM channel_state ORDER BY device_id, channel")
        return [ChannelState.from_item(json.loads(item)) for (item,) in rows]

    def knows_product(self, product_id: str) -> bool:
        """Some stored device channel is of this product."""
        row = self._db.execute(
            "SELECT 1 FROM channel_state WHERE json_extract(item, '$.product_id') = ? LIMIT 1",
            (product_id,),
        ).fetchone()
        return row is not None

    def save_batch(
        self,
        *,
        states: Sequence[ChannelState],
        events: Sequence[FirmwareEvent],
        checks: Sequence[tuple[str, bool, dict[str, Any] | None]],
        notifiers: Sequence[str],
        run_id: str,
        now: datetime,
        held: Sequence[FirmwareEvent] = (),
        notify_events: Collection[EventType] | None = None,
    ) -> int:
        """Store a batch's changed states, its news and its check times atomically.

        Each new piece of news is queued for every notifier named, when its type is one of
        ``notify_events`` (every type by default); news of another type is recorded in the
        outbox all the same, for the dedupe rule, but is pending for no notifier. News
        already in the outbox (the same dedupe key) within
        :data:`~fwwatch.events.NEWS_DEDUPE_WINDOW` is ignored, so a replayed batch cannot
        queue the same notification twice; older news of the same key is news again.
        ``held`` is news an ignore keeps back: kept, with the states, as its device
        channel's latest held offer. Returns how many events were new.
        """
        checked_at = now.replace(microsecond=0).isoformat()  # as `fwwatch status` shows it
        with self.transaction() as db:
            refused = self._write_states(db, states)
            queued = self._queue(
                db,
                [e for e in events if (e.device_id, e.channel) not in refused],
                notifiers,
                run_id,
                now,
                notify_events,
            )
            self._hold(db, [e for e in held if (e.device_id, e.channel) not in refused], now)
            db.executemany(
                "INSERT INTO device_check (device_id, last_checked, ok, error) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(device_id) DO UPDATE SET last_checked=excluded.last_checked, "
                "ok=excluded.ok, error=excluded.error",
                [
                    (device_id, checked_at, int(ok), json.dumps(error) if error else None)
                    for device_id, ok, error in checks
                ],
            )
        return queued

    @staticmethod
    def _queue(
        db: sqlite3.Connection,
        events: Iterable[FirmwareEvent],
        notifiers: Sequence[str],
        run_id: str,
        now: datetime,
        notify_events: Collection[EventType] | None = None,
    ) -> int:
        """Put news in the outbox for every notifier (news of the ``notify_events`` types
        only; for none, the rest), unless its key was told within the dedupe window; how many
        were new."""
        stamp = now.isoformat()
        forgotten = (now - NEWS_DEDUPE_WINDOW).isoformat()
        queued = 0
        for event in events:
            row = db.execute(
                "INSERT INTO outbox (dedupe_key, event, run_id, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(dedupe_key) DO UPDATE SET "
                "event=excluded.event, run_id=excluded.run_id, "
                "created_at=excluded.created_at WHERE outbox.created_at < ? RETURNING id",
                (event.dedupe_key, event.model_dump_json(), run_id, stamp, forgotten),
            ).fetchone()
            if row is None:
                continue
            queued += 1
            if notify_events is not None and event.type not in notify_events:
                continue
            db.executemany(
                "INSERT INTO delivery (outbox_id, notifier) VALUES (?, ?) "
                "ON CONFLICT(outbox_id, notifier) DO UPDATE SET delivered_at=NULL, "
                "attempts=0, last_error=NULL",
                [(row[0], notifier) for notifier in notifiers],
            )
        return queued

    @staticmethod
    def _hold(db: sqlite3.Connection, events: Iterable[FirmwareEvent], now: datetime) -> None:
        """Keep held-back offers, one per device channel: a later one replaces an earlier."""
        db.executemany(
            "INSERT INTO held_news (device_id, channel, product_id, version, dedupe_key, event, "
            "held_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(device_id, channel) DO UPDATE "
            "SET product_id=excluded.product_id, version=excluded.version, "
            "dedupe_key=excluded.dedupe_key, event=excluded.event, held_at=excluded.held_at",
            [
                (
                    event.device_id,
                    event.channel,
                    event.product_id or "",
                    event.target_version or "",
                    event.dedupe_key,
                    event.model_dump_json(),
                    now.isoformat(),
                )
                for event in events
            ],
        )

    @staticmethod
    def _write_states(db: sqlite3.Connection, states: Iterable[ChannelState]) -> set[ChannelKey]:
        """Write states in observation order: one observed before the stored state of its
        key is refused. Returns the keys refused."""
        refused: set[ChannelKey] = set()
        for state in states:
            written = db.execute(
                "INSERT INTO channel_state (device_id, channel, item, observed_us) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(device_id, channel) DO UPDATE SET "
                "item=excluded.item, observed_us=excluded.observed_us "
                "WHERE channel_state.observed_us IS NULL "
                "OR channel_state.observed_us < excluded.observed_us",
                (
                    state.device_id,
                    state.channel,
                    json.dumps(state.to_item()),
                    order_key(state.last_changed),
                ),
            ).rowcount
            if not written:
                refused.add(state.key)
        return refused

    # ------------------------------------------------------------------ ignored versions

    def ignore_version(self, entry: IgnoredVersion, now: datetime) -> IgnoredVersion | None:
        """Ignore a version from the next run on; the entry already there, if it was."""
        existing = self._find_ignore(entry)
        if existing is not None:
            return existing
        self._db.execute(
            "INSERT INTO ignored_version (product_id, channel, version, added_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (entry.product_id, entry.channel, entry.version, now.isoformat()),
        )
        return None

    def unignore_version(self, entry: IgnoredVersion) -> bool:
        """Stop ignoring exactly this entry (same product, version and channel or every
        channel); whether it was there. Its held-back news is told by the next run."""
        return bool(
            self._db.execute(
                "DELETE FROM ignored_version WHERE product_id = ? AND version = ? "
                "AND coalesce(channel, -1) = coalesce(?, -1)",
                (entry.product_id, entry.version, entry.channel),
            ).rowcount
        )

    def _find_ignore(self, entry: IgnoredVersion) -> IgnoredVersion | None:
        row = self._db.execute(
            "SELECT added_at FROM ignored_version WHERE product_id = ? AND version = ? "
            "AND coalesce(channel, -1) = coalesce(?, -1)",
            (entry.product_id, entry.version, entry.channel),
        ).fetchone()
        if row is None:
            return None
        return IgnoredVersion(
            entry.product_id, entry.version, entry.channel, datetime.fromisoformat(row[0])
        )

    def ignored_versions(self) -> IgnoredVersions:
        """Every ignored version, by product, version and channel (every channel first)."""
        rows = self._db.execute(
            "SELECT product_id, version, channel, added_at FROM ignored_version "
            "ORDER BY product_id, version, coalesce(channel, -1)"
        )
        return IgnoredVersions(
            tuple(
                IgnoredVersion(product_id, version, channel, datetime.fromisoformat(added_at))
                for product_id, version, channel, added_at in rows
            )
        )

    def held_news(self, ignored: IgnoredVersions) -> list[FirmwareEvent]:
        """Held-back offers that ``ignored`` no longer covers (the ones to release)."""
        offers = self._db.execute("SELECT DISTINCT product_id, channel, version FROM held_news")
        free = [offer for offer in offers if not ignored.covers_offer(*offer)]
        events: list[FirmwareEvent] = []
        for product_id, channel, version in free:
            rows = self._db.execute(
                "SELECT event FROM held_news WHERE product_id = ? AND channel = ? AND version = ? "
                "ORDER BY device_id",
                (product_id, channel, version),
            )
            events += [FirmwareEvent.model_validate_json(event) for (event,) in rows]
        return events

    def release_held(
        self,
        *,
        tell: Sequence[FirmwareEvent],
        forget: Sequence[FirmwareEvent],
        notifiers: Sequence[str],
        run_id: str,
        now: datetime,
    ) -> int:
        """Queue held-back news as news (``tell``) and drop what was held (``forget``) in one
        transaction; how many were queued. A key told before stays untold (the dedupe rule)."""
        with self.transaction() as db:
            queued = self._queue(db, tell, notifiers, run_id, now)
            db.executemany(
                "DELETE FROM held_news WHERE device_id = ? AND channel = ? AND dedupe_key = ?",
                [(event.device_id, event.channel, event.dedupe_key) for event in forget],
            )
        return queued

    # ------------------------------------------------------------------ learned rate

    def learned_rate(self, endpoint: str, access_id: str) -> float | None:
        """The rate limit an earlier run learned for this endpoint and Access ID, if any."""
        row = self._db.execute(
            "SELECT rps FROM learned_rate WHERE endpoint = ? AND access_id = ?",
            (endpoint, access_id),
        ).fetchone()
        return float(row[0]) if row else None

    def remember_rate(self, endpoint: str, access_id: str, rps: float, now: datetime) -> None:
        """Keep the rate limit a run learned, for the next run to start at."""
        self._db.execute(
            "INSERT INTO learned_rate (endpoint, access_id, rps, learned_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(endpoint, access_id) DO UPDATE SET rps=excluded.rps, "
            "learned_at=excluded.learned_at",
            (endpoint, access_id, rps, now.isoformat()),
        )

    def forget_rates(self) -> int:
        """Forget every learned rate limit; how many there were."""
        return self._db.execute("DELETE FROM learned_rate").rowcount

    def known_device_ids(self) -> list[str]:
        """Every device an earlier run checked or tried to, in order."""
        rows = self._db.execute("SELECT device_id FROM device_check ORDER BY device_id")
        return [device_id for (device_id,) in rows]

    def last_checks(self) -> dict[str, tuple[str, bool, dict[str, Any] | None]]:
        """When each device was last checked, whether it worked, and its error."""
        rows = self._db.execute("SELECT device_id, last_checked, ok, error FROM device_check")
        return {
            device_id: (checked, bool(ok), json.loads(error) if error else None)
            for device_id, checked, ok, error in rows
        }

    # ------------------------------------------------------------------ outbox

    def pending(self, notifier: str) -> list[PendingEvent]:
        """News not yet delivered by ``notifier``, oldest first."""
        rows = self._db.execute(
            "SELECT o.id, o.event FROM delivery d JOIN outbox o ON o.id = d.outbox_id "
            "WHERE d.notifier = ? AND d.delivered_at IS NULL ORDER BY o.id",
            (notifier,),
        )
        return [
            PendingEvent(outbox_id, FirmwareEvent.model_validate_json(event))
            for outbox_id, event in rows
        ]

    def mark_delivered(self, notifier: str, outbox_ids: Iterable[int], now: datetime) -> None:
        """Record that ``notifier`` delivered these events."""
        stamp = now.isoformat()
        with self.transaction() as db:
            db.executemany(
                "UPDATE delivery SET delivered_at=?, attempts=attempts+1, last_error=NULL "
                "WHERE outbox_id=? AND notifier=?",
                [(stamp, outbox_id, notifier) for outbox_id in outbox_ids],
            )

    def mark_uncertain(
        self, notifier: str, outbox_ids: Iterable[int], error: str, now: datetime
    ) -> None:
        """Record a delivery that may or may not have arrived: never sent again.

        The row counts as delivered (``delivered_at`` set) and keeps why it is uncertain in
        ``last_error``; a delivered row with an error is one whose arrival is not known.
        """
        stamp = now.isoformat()
        with self.transaction() as db:
            db.executemany(
                "UPDATE delivery SET delivered_at=?, attempts=attempts+1, last_error=? "
                "WHERE outbox_id=? AND notifier=?",
                [
                    (stamp, f"uncertain: {error}"[:500], outbox_id, notifier)
                    for outbox_id in outbox_ids
                ],
            )

    def mark_failed(self, notifier: str, outbox_ids: Iterable[int], error: str) -> None:
        """Record a failed attempt; the events stay pending for the next cycle."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE delivery SET attempts=attempts+1, last_error=? "
                "WHERE outbox_id=? AND notifier=?",
                [(error[:500], outbox_id, notifier) for outbox_id in outbox_ids],
            )

    # ------------------------------------------------------------------ MQTT

    def retained(self, broker: str) -> dict[str, Retained]:
        """What ``broker`` (an address without credentials) was last given, by topic, and when
        it acknowledged it."""
        rows = self._db.execute(
            "SELECT topic, device_id, payload, published_at FROM mqtt_retained WHERE broker = ?",
            (broker,),
        )
        return {
            topic: Retained(topic, device_id, payload, datetime.fromisoformat(published_at))
            for topic, device_id, payload, published_at in rows
        }

    def record_retained(self, broker: str, messages: Iterable[Retained], now: datetime) -> None:
        """Record messages ``broker`` acknowledged (a clear is kept, with its empty payload)."""
        stamp = now.isoformat()
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO mqtt_retained (broker, topic, device_id, payload, published_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(broker, topic) DO UPDATE SET "
                "device_id=excluded.device_id, payload=excluded.payload, "
                "published_at=excluded.published_at",
                [(broker, m.topic, m.device_id, m.payload, stamp) for m in messages],
            )

    # ------------------------------------------------------------------ runs

    def start_run(self, run_id: str, now: datetime) -> None:
        """Record the start of a run."""
        self._db.execute(
            "INSERT INTO run (run_id, started_at) VALUES (?, ?)", (run_id, now.isoformat())
        )

    def finish_run(
        self, run_id: str, report: dict[str, Any], *, now: datetime | None = None
    ) -> None:
        """Record the end of a run (``now``, by default the present) with its report, and
        the versions the fleet is on then (see :meth:`version_history`), in one
        transaction."""
        finished = (now or datetime.now(UTC)).isoformat()
        with self.transaction() as db:
            db.execute(
                "UPDATE run SET finished_at=?, report=? WHERE run_id=?",
                (finished, json.dumps(report), run_id),
            )
            # Device channels on a version, and offered one (a target other than the
            # installed version), counted from the states as the run leaves them.
            db.execute(
                "INSERT OR REPLACE INTO run_versions (run_id, finished_at, product_id, "
                "channel, version, installed, offered) "
                "SELECT ?, ?, product_id, channel, version, sum(installed), sum(offered) FROM ("
                "  SELECT coalesce(json_extract(item, '$.product_id'), '') AS product_id,"
                "    channel, json_extract(item, '$.current_version') AS version,"
                "    1 AS installed, 0 AS offered"
                "  FROM channel_state WHERE channel >= 0"
                "  UNION ALL"
                "  SELECT coalesce(json_extract(item, '$.product_id'), ''), channel,"
                "    json_extract(item, '$.target_version'), 0, 1"
                "  FROM channel_state WHERE channel >= 0"
                "    AND json_extract(item, '$.target_version') IS NOT NULL"
                "    AND json_extract(item, '$.target_version') != ''"
                "    AND json_extract(item, '$.target_version')"
                "      IS NOT json_extract(item, '$.current_version')"
                ") WHERE version IS NOT NULL AND version != '' "
                "GROUP BY product_id, channel, version",
                (run_id, finished),
            )

    def version_history(self) -> list[VersionTally]:
        """Each finished run's device channels per product, channel and version, oldest
        run first (runs from before the state kept this history are absent)."""
        rows = self._db.execute(
            "SELECT run_id, finished_at, product_id, channel, version, installed, offered "
            "FROM run_versions ORDER BY finished_at, run_id, product_id, channel, version"
        )
        return [
            VersionTally(
                run_id=run_id,
                at=datetime.fromisoformat(finished_at),
                product_id=product_id,
                channel=channel,
                version=version,
                installed=installed,
                offered=offered,
            )
            for run_id, finished_at, product_id, channel, version, installed, offered in rows
        ]
