"""Ignored versions: the rule that keeps an offer from being news, and what it holds back."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fwwatch.events import EventType, FirmwareEvent
from fwwatch.ignored import (
    IgnoredVersion,
    IgnoredVersions,
    InvalidIgnoreError,
    release_held,
    validate_channel,
    validate_product_id,
    validate_version,
)
from fwwatch.local.store_sqlite import SqliteStore
from fwwatch.state import ChannelState

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
PLUG = "keyjup78v54myhan"


def event(
    kind: EventType = EventType.UPDATE_AVAILABLE,
    *,
    device: str = "plug01",
    channel: int = 0,
    product: str | None = PLUG,
    version: str = "1.2.0",
    at: datetime = T0,
) -> FirmwareEvent:
    installed = kind is EventType.UPDATE_INSTALLED
    return FirmwareEvent(
        type=kind,
        device_id=device,
        channel=channel,
        product_id=product,
        previous_version="1.1.0",
        current_version=version if installed else "1.1.0",
        target_version=None if installed else version,
        occurred_at=at,
    )


def state(
    *, device: str = "plug01", channel: int = 0, current: str = "1.1.0", target: str | None
) -> ChannelState:
    return ChannelState(
        device_id=device,
        channel=channel,
        product_id=PLUG,
        current_version=current,
        target_version=target,
        upgrade_status=1 if target else 0,
        update_available=bool(target),
        first_seen=T0,
        last_changed=T0,
    )


def ignoring(*entries: IgnoredVersion) -> IgnoredVersions:
    return IgnoredVersions(entries)


# ------------------------------------------------------------------------------ the rule


def test_an_ignore_without_channel_covers_the_offer_on_every_channel() -> None:
    rule = ignoring(IgnoredVersion(PLUG, "1.2.0"))
    assert rule.covers(event(channel=0))
    assert rule.covers(event(channel=9))


def test_an_ignore_of_one_channel_covers_only_that_channel() -> None:
    rule = ignoring(IgnoredVersion(PLUG, "1.2.0", channel=9))
    assert rule.covers(event(channel=9))
    assert not rule.covers(event(channel=0))


@pytest.mark.parametrize(
    "other",
    [
        event(version="1.2.1"),
        event(product="otherproduct0001"),
        event(product=None),
    ],
    ids=["another version", "another product", "an unknown product"],
)
def test_an_ignore_covers_only_its_own_product_and_version(other: FirmwareEvent) -> None:
    assert not ignoring(IgnoredVersion(PLUG, "1.2.0")).covers(other)


@pytest.mark.parametrize("kind", [EventType.UPDATE_INSTALLED, EventType.UPDATE_FAILED])
def test_installs_and_failures_of_an_ignored_version_are_still_news(kind: EventType) -> None:
    assert not ignoring(IgnoredVersion(PLUG, "1.2.0")).covers(event(kind))


def test_split_keeps_the_order_of_the_news_it_lets_through() -> None:
    # Given news of an ignored offer between two other pieces of news
    news = [
        event(device="a", version="1.3.0"),
        event(device="b"),
        event(EventType.UPDATE_INSTALLED, device="c"),
    ]
    # When the rule splits them
    told, held = ignoring(IgnoredVersion(PLUG, "1.2.0")).split(news)
    # Then the ignored offer is held back, the others are told in their order
    assert [e.device_id for e in told] == ["a", "c"]
    assert [e.device_id for e in held] == ["b"]


def test_no_ignore_covers_nothing() -> None:
    assert IgnoredVersions().split([event()]) == ([event()], [])


# ------------------------------------------------------------------------------ release


def test_held_news_still_covered_stays_held() -> None:
    release = release_held(
        [event()], ignoring(IgnoredVersion(PLUG, "1.2.0")), {("plug01", 0): state(target="1.2.0")}
    )
    assert (release.tell, release.forget) == ([], [])


def test_held_news_no_longer_covered_is_told_where_the_version_is_still_on_offer() -> None:
    held = [event(device="plug01"), event(device="plug02"), event(device="plug03")]
    states = {
        ("plug01", 0): state(device="plug01", target="1.2.0"),  # still on offer
        ("plug02", 0): state(device="plug02", current="1.2.0", target=None),  # installed
        ("plug03", 0): state(device="plug03", target="1.3.0"),  # offered another since
    }
    release = release_held(held, IgnoredVersions(), states)
    assert [e.device_id for e in release.tell] == ["plug01"]
    assert release.forget == held


def test_held_news_of_a_device_no_longer_stored_is_forgotten() -> None:
    release = release_held([event()], IgnoredVersions(), {})
    assert (release.tell, release.forget) == ([], [event()])


def test_removing_one_of_two_ignores_that_cover_an_offer_releases_nothing() -> None:
    still = ignoring(IgnoredVersion(PLUG, "1.2.0", channel=0))
    release = release_held([event()], still, {("plug01", 0): state(target="1.2.0")})
    assert (release.tell, release.forget) == ([], [])


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize("good", ["keyjup78v54myhan", "a", "prod_uct-1", "x" * 64])
def test_a_product_id_of_letters_digits_and_dashes_is_accepted(good: str) -> None:
    assert validate_product_id(good) == good


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("", "is empty"),
        ("x" * 65, "at most 64"),
        ("../v1.0/token", "only ASCII letters"),
        ("key jup", "only ASCII letters"),
        ("kéy", "only ASCII letters"),
        ("key\njup", "only ASCII letters"),
    ],
)
def test_a_product_id_that_is_not_one_is_refused_with_the_fix(bad: str, reason: str) -> None:
    with pytest.raises(InvalidIgnoreError) as caught:
        validate_product_id(bad)
    assert reason in str(caught.value)
    assert "`fwwatch status`" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("good", ["1.2.0", "2.10.3", "1.0.0-beta+7", "V1_2", "7"])
def test_a_version_as_tuya_reports_it_is_accepted(good: str) -> None:
    assert validate_version(good) == good


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("", "is empty"),
        ("1" * 65, "at most 64"),
        (".1.2", "starting with a letter or digit"),
        ("1.2 ", "only ASCII letters"),
        ("1.2;rm", "only ASCII letters"),
    ],
)
def test_a_version_that_is_not_one_is_refused_with_the_fix(bad: str, reason: str) -> None:
    with pytest.raises(InvalidIgnoreError) as caught:
        validate_version(bad)
    assert reason in str(caught.value)
    assert "e.g. 1.2.0" in str(caught.value)


@pytest.mark.parametrize(("channel", "ok"), [(0, True), (9, True), (999, True), (-1, False)])
def test_a_channel_is_a_firmware_channel_number(channel: int, ok: bool) -> None:
    if ok:
        assert validate_channel(channel) == channel
    else:
        with pytest.raises(InvalidIgnoreError, match="leave it out for every channel"):
            validate_channel(channel)


# ------------------------------------------------------------------------------ the store


def test_the_store_keeps_ignores_once_each_and_removes_exactly_the_one_named(
    tmp_path: Path,
) -> None:
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        # Given 1.2.0 ignored on every channel and on channel 0, the first one twice
        every = IgnoredVersion(PLUG, "1.2.0")
        on_main = IgnoredVersion(PLUG, "1.2.0", channel=0)
        assert store.ignore_version(every, T0) is None
        assert store.ignore_version(on_main, T0) is None
        again = store.ignore_version(every, T0 + timedelta(days=1))
        # Then the second time says since when it was ignored, and each is kept once
        assert again is not None
        assert again.added_at == T0
        assert [(e.channel, e.added_at) for e in store.ignored_versions().entries] == [
            (None, T0),
            (0, T0),
        ]
        # When the one for every channel is removed
        assert store.unignore_version(every)
        # Then the one for channel 0 stays, and removing the first again finds nothing
        assert [e.channel for e in store.ignored_versions().entries] == [0]
        assert not store.unignore_version(every)


def test_held_news_is_kept_with_the_batch_latest_per_device_channel(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        # Given an offer of 1.2.0 held back, then one of 1.2.1 for the same device channel
        for version, at in (("1.2.0", T0), ("1.2.1", T0 + timedelta(hours=1))):
            store.save_batch(
                states=[],
                events=[],
                held=[event(version=version, at=at)],
                checks=[],
                notifiers=["console"],
                run_id="r",
                now=at,
            )
        # Then only the later is held, nothing is pending, and no ignore covers it now
        assert [e.target_version for e in store.held_news(IgnoredVersions())] == ["1.2.1"]
        assert store.pending("console") == []
        assert store.held_news(ignoring(IgnoredVersion(PLUG, "1.2.1"))) == []


def test_held_news_of_a_state_refused_as_older_is_not_kept(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        # Given a device channel stored as observed later than a slow check's answer
        later = state(target="1.2.0").model_copy(update={"last_changed": T0 + timedelta(hours=1)})
        store.save_batch(states=[later], events=[], checks=[], notifiers=[], run_id="r", now=T0)
        # When the slow check's state comes with held news
        store.save_batch(
            states=[state(target="1.2.0")],
            events=[],
            held=[event()],
            checks=[],
            notifiers=[],
            run_id="r",
            now=T0,
        )
        # Then its news is not held: it is not true
        assert store.held_news(IgnoredVersions()) == []


def test_released_news_is_queued_once_and_its_hold_dropped(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        # Given an offer told before it was held (the ignore came after the news)
        store.save_batch(
            states=[], events=[event()], checks=[], notifiers=["console"], run_id="r", now=T0
        )
        (told,) = store.pending("console")
        store.mark_delivered("console", [told.outbox_id], T0)
        store.save_batch(
            states=[], events=[], held=[event(), event(device="plug02")], checks=[],
            notifiers=["console"], run_id="r", now=T0,
        )  # fmt: skip
        # When both are released
        held = store.held_news(IgnoredVersions())
        queued = store.release_held(
            tell=held, forget=held, notifiers=["console"], run_id="r2", now=T0
        )
        # Then only the one never told is queued, and nothing is held any more
        assert queued == 1
        assert [p.event.device_id for p in store.pending("console")] == ["plug02"]
        assert store.held_news(IgnoredVersions()) == []


def test_a_state_file_from_before_ignores_gets_their_tables(tmp_path: Path) -> None:
    # Given a state file without the ignore tables, as older versions wrote it
    path = tmp_path / "state.sqlite3"
    SqliteStore(path).close()
    db = sqlite3.connect(path)
    db.executescript("DROP TABLE ignored_version; DROP TABLE held_news;")
    db.close()
    # When it is opened again
    with SqliteStore(path) as store:
        # Then ignores and held news work in it
        store.ignore_version(IgnoredVersion(PLUG, "1.2.0"), T0)
        assert len(store.ignored_versions()) == 1
        assert store.held_news(IgnoredVersions()) == []
