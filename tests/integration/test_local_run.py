"""One cycle on one machine, against the simulator, with real SQLite and real notifiers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fwwatch.events import EventType
from fwwatch.local.runner import RunReport, run_cycle
from fwwatch.local.store_sqlite import SqliteStore
from fwwatch.notify import SlackNotifier
from fwwatch.simulator import Fleet, FleetChannel, FleetDevice, generate_fleet
from fwwatch.tuya import RetryPolicy, TuyaClient, TuyaFatalError, TuyaSettings
from tests.integration.fakes import RecordingNotifier, serving_fake_slack

pytestmark = pytest.mark.integration

PLUG = "plugprod0001"
SENSOR = "sensprod0001"


def small_fleet() -> Fleet:
    plugs = [
        FleetDevice(
            device_id=f"plug{i:02d}",
            name=f"Plug {i}",
            product_id=PLUG,
            product_name="Smart plug",
            category="cz",
            channels=[FleetChannel(channel=0, current_version="1.0.0")],
        )
        for i in range(6)
    ]
    sensors = [
        FleetDevice(
            device_id=f"sens{i:02d}",
            name=f"Sensor {i}",
            product_id=SENSOR,
            product_name="Zigbee sensor",
            category="wsdcg",
            shape="object",
            channel_key="channel",
            channels=[FleetChannel(channel=3, current_version="2.0.0")],
        )
        for i in range(4)
    ]
    return Fleet(devices=plugs + sensors)


@pytest.fixture
def sim(make_simulator: Callable[..., Any]) -> Any:
    return make_simulator(fleet=small_fleet())


async def cycle(sim: Any, store: SqliteStore, *notifiers: Any, **kwargs: Any) -> RunReport:
    settings = TuyaSettings(
        access_id=sim.access_id, access_secret=sim.access_secret, endpoint=sim.url, qps=500
    )
    async with TuyaClient(settings, retry=RetryPolicy(base_s=0.01)) as tuya:
        return await run_cycle(tuya, store, list(notifiers), **kwargs)


async def test_the_first_run_is_a_silent_baseline(sim: Any, tmp_path: Path) -> None:
    notifier = RecordingNotifier()
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        report = await cycle(sim, store, notifier)
        assert len([s for s in store.load_all() if s.channel >= 0]) == 10
    assert (report.devices, report.checked, report.events, notifier.groups) == (10, 10, [], [])


async def test_a_release_makes_one_grouped_notification_naming_its_devices(
    sim: Any, tmp_path: Path
) -> None:
    notifier = RecordingNotifier()
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        await cycle(sim, store, notifier)
        # When a release is published for the plugs' main module
        sim.cloud.publish_release(PLUG, 0, "1.1.0")
        report = await cycle(sim, store, notifier)
    assert notifier.delivered() == [
        ("update_available", PLUG, 0, "1.1.0", [f"plug{i:02d}" for i in range(6)])
    ]
    assert len(report.events) == 6
    assert report.notifications["recording"].sent == 1


async def test_an_unchanged_run_writes_and_sends_nothing(sim: Any, tmp_path: Path) -> None:
    notifier = RecordingNotifier()
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        await cycle(sim, store, notifier)
        sim.cloud.publish_release(SENSOR, 3, "2.1.0")
        await cycle(sim, store, notifier)
        before = store.load_all()
        report = await cycle(sim, store, notifier)
        assert store.load_all() == before
    assert report.events == []
    assert len(notifier.groups) == 1


async def test_installed_and_failed_updates_are_reported(sim: Any, tmp_path: Path) -> None:
    notifier = RecordingNotifier()
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        await cycle(sim, store, notifier)
        sim.cloud.publish_release(PLUG, 0, "1.1.0")
        await cycle(sim, store, notifier)
        sim.cloud.mark_installed("plug00")
        sim.cloud.mark_installed("plug01")
        sim.cloud.mark_failed("plug02", status=4)
        report = await cycle(sim, store, notifier)
    assert sorted((e.type.value, e.device_id) for e in report.events) == [
        ("update_failed", "plug02"),
        ("update_installed", "plug00"),
        ("update_installed", "plug01"),
    ]
    installed = [g for g in notifier.groups if g.type is EventType.UPDATE_INSTALLED]
    assert [(g.version, g.previous_versions) for g in installed] == [("1.1.0", ["1.0.0"])]


async def test_a_run_killed_half_way_is_completed_without_duplicates(
    sim: Any, tmp_path: Path
) -> None:
    # Given a baseline, then a release for every plug
    notifier = RecordingNotifier()
    path = tmp_path / "state.sqlite3"
    with SqliteStore(path) as store:
        await cycle(sim, store, notifier)
    sim.cloud.publish_release(PLUG, 0, "1.1.0")

    # When the process dies after the first batch was stored, before anything was sent
    class Crash(BaseException):
        pass

    class CrashingStore(SqliteStore):
        batches = 0

        def save_batch(self, **kwargs: Any) -> int:
            if CrashingStore.batches == 1:
                raise Crash
            CrashingStore.batches += 1
            return super().save_batch(**kwargs)

    with CrashingStore(path) as store, pytest.raises(Crash):
        await cycle(sim, store, notifier, batch_size=3)
    assert notifier.groups == []

    # Then the next clean run sends each plug's news exactly once
    with SqliteStore(path) as store:
        await cycle(sim, store, notifier, batch_size=3)
        await cycle(sim, store, notifier, batch_size=3)
    devices = sorted(d for group in notifier.delivered() for d in group[4])
    assert devices == [f"plug{i:02d}" for i in range(6)]


async def test_a_failing_notifier_keeps_its_news_and_does_not_block_the_others(
    sim: Any, tmp_path: Path
) -> None:
    flaky, steady = RecordingNotifier("flaky"), RecordingNotifier("steady")
    flaky.failures_left = 1
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        await cycle(sim, store, flaky, steady)
        sim.cloud.publish_release(SENSOR, 3, "2.1.0")
        report = await cycle(sim, store, flaky, steady)
        assert (report.notifications["flaky"].failed, report.notifications["steady"].sent) == (1, 1)
        assert not report.ok
        # The next cycle, with nothing new, delivers what the flaky notifier missed
        retry = await cycle(sim, store, flaky, steady)
    assert retry.notifications["flaky"].sent == 1
    assert len(steady.groups) == 1
    assert flaky.delivered() == steady.delivered()


async def test_a_message_slack_never_answered_is_reported_and_not_posted_by_the_next_cycle(
    sim: Any, tmp_path: Path
) -> None:
    with serving_fake_slack("/services/T000/B000/slowsecret") as slack:
        # Given a webhook that posts each message but always answers after the timeouts
        slack.delays = [1.0] * 10
        notifier = SlackNotifier(slack.url, timeout_s=0.1, retry_timeout_s=0.3, max_wait_s=0.05)
        with SqliteStore(tmp_path / "state.sqlite3") as store:
            await cycle(sim, store, notifier)
            sim.cloud.publish_release(PLUG, 0, "1.1.0")
            # When a cycle delivers the release's news, and the next cycle comes
            report = await cycle(sim, store, notifier)
            again = await cycle(sim, store, notifier)
    # Then the subscriber received it twice (the post and its one retry), not once a cycle
    assert len(slack.received) == 2
    # And the report says it may not have arrived, as the run's outcome (exit 1)
    assert report.as_dict()["notifications"]["slack"] == {
        "sent": 0,
        "failed": 0,
        "uncertain": 1,
        "error": report.notifications["slack"].error,
    }
    assert "may not have arrived" in str(report.notifications["slack"].error)
    assert "1 notification may not have arrived" in report.summary_line()
    assert not report.ok
    assert (again.notifications["slack"].sent, again.notifications["slack"].uncertain) == (0, 0)
    assert again.ok


async def test_device_errors_are_reported_and_do_not_stop_the_run(sim: Any, tmp_path: Path) -> None:
    sim.cloud.set_device_error("sens01", 2001)
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        report = await cycle(sim, store)
        checks = store.last_checks()
    assert report.checked == 9
    assert [(r.device_id, r.error.code if r.error else None) for r in report.failed] == [
        ("sens01", 2001)
    ]
    assert checks["sens01"][1] is False
    assert report.as_dict()["failed"] == [
        {
            "device_id": "sens01",
            "outcome": "device_error",
            "code": 2001,
            "msg": report.failed[0].error.msg,  # type: ignore[union-attr]
        }
    ]
    assert report.ok  # an offline device answered: nothing failed


async def test_notify_first_seen_announces_offers_on_the_first_run(
    sim: Any, tmp_path: Path
) -> None:
    sim.cloud.publish_release(SENSOR, 3, "2.1.0")
    notifier = RecordingNotifier()
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        await cycle(sim, store, notifier, notify_first_seen=True)
    assert [(g.type.value, g.device_count) for g in notifier.groups] == [("update_available", 4)]


async def test_given_device_ids_limit_the_run(sim: Any, tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        report = await cycle(sim, store, device_ids=["plug00", "sens00"])
    assert (report.devices, report.checked) == (2, 2)
    assert report.tuya_requests == 3  # one grant, two firmware calls


async def test_a_fatal_answer_while_listing_stops_the_run(sim: Any, tmp_path: Path) -> None:
    settings = TuyaSettings(access_id=sim.access_id, access_secret="wrong", endpoint=sim.url)
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        async with TuyaClient(settings) as tuya:
            with pytest.raises(TuyaFatalError, match="TUYA_ACCESS_SECRET"):
                await run_cycle(tuya, store, [RecordingNotifier()])
        assert store.load_all() == []


async def test_listing_and_checking_overlap_without_losing_devices(
    make_simulator: Callable[..., Any], tmp_path: Path
) -> None:
    fleet = generate_fleet(230, seed=3, offline_ratio=0)
    sim = make_simulator(fleet=fleet)
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        report = await cycle(sim, store, batch_size=40)
        stored = {s.device_id for s in store.load_all()}
    assert (report.devices, report.checked) == (230, 230)
    assert stored == {d.device_id for d in fleet.devices}
