"""``FWWATCH_EVENTS``: notifiers get only the chosen kinds of news, and the rest never waits."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fwwatch.cli import main
from fwwatch.events import EventType
from fwwatch.local.runner import run_cycle
from fwwatch.local.store_sqlite import SqliteStore
from fwwatch.simulator import Fleet
from fwwatch.tuya import RetryPolicy, TuyaClient, TuyaSettings
from tests.integration.conftest import point_cli_at
from tests.integration.fakes import RecordingNotifier
from tests.integration.fleets import LAMP_PRODUCT, lamps

pytestmark = pytest.mark.integration

PRODUCT = LAMP_PRODUCT


def fleet() -> Fleet:
    return lamps(4)


def jsonl_types(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["type"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_cli_sends_only_the_events_chosen_and_keeps_none_of_the_others_pending(
    make_simulator: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    simulator = make_simulator(fleet=fleet())
    point_cli_at(simulator, monkeypatch, tmp_path)
    news = tmp_path / "news.jsonl"
    monkeypatch.setenv("FWWATCH_JSONL", str(news))
    # Given notifiers that should hear of installs and failures only
    monkeypatch.setenv("FWWATCH_EVENTS", "update_installed, update_failed")
    assert main(["run"]) == 0  # the baseline
    capsys.readouterr()
    # When a release is offered, then installed on one device
    simulator.cloud.publish_release(PRODUCT, 0, "3.1.0")
    assert main(["run", "--json"]) == 0
    offered = json.loads(capsys.readouterr().out)
    simulator.cloud.mark_installed("lamp01")
    assert main(["run", "--json"]) == 0
    installed = json.loads(capsys.readouterr().out)
    # Then the offer is in the run's report, but no notifier got it; the install went out
    assert [e["type"] for e in offered["events"]] == ["update_available"] * 4
    assert offered["notifications"]["jsonl"]["sent"] == 0
    assert offered["notifications"]["console"]["sent"] == 0
    assert installed["notifications"]["jsonl"]["sent"] == 1
    assert jsonl_types(news) == ["update_installed"]
    # And when every event is wanted again, the offer held back is not sent late
    monkeypatch.delenv("FWWATCH_EVENTS")
    assert main(["run", "--json"]) == 0
    later = json.loads(capsys.readouterr().out)
    assert later["notifications"]["jsonl"]["sent"] == 0
    assert jsonl_types(news) == ["update_installed"]


async def test_news_of_a_kind_not_chosen_is_recorded_and_pending_for_no_notifier(
    make_simulator: Callable[..., Any], tmp_path: Path
) -> None:
    simulator = make_simulator(fleet=fleet())
    settings = TuyaSettings(
        access_id=simulator.access_id,
        access_secret=simulator.access_secret,
        endpoint=simulator.url,
        qps=500,
    )
    notifier = RecordingNotifier()
    only_offers = {EventType.UPDATE_AVAILABLE}
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        async with TuyaClient(settings, retry=RetryPolicy(base_s=0.01)) as tuya:
            await run_cycle(tuya, store, [notifier], notify_events=only_offers)
            # Given an offer, and a failed update on one device
            simulator.cloud.publish_release(PRODUCT, 0, "3.1.0")
            await run_cycle(tuya, store, [notifier], notify_events=only_offers)
            simulator.cloud.mark_failed("lamp02")
            report = await run_cycle(tuya, store, [notifier], notify_events=only_offers)
        # Then the notifier got the offer only; the failure was news, pending for nobody
        assert [group.type for group in notifier.groups] == [EventType.UPDATE_AVAILABLE]
        assert [event.type for event in report.events] == [EventType.UPDATE_FAILED]
        assert store.pending(notifier.name) == []
        # And when that batch is stored again with every kind wanted (a replay), the
        # failure is not news again: it was recorded, so the dedupe rule holds
        replayed = store.save_batch(
            states=[],
            events=report.events,
            checks=[],
            notifiers=[notifier.name],
            run_id="replay",
            now=report.events[0].occurred_at,
        )
        assert replayed == 0
        assert store.pending(notifier.name) == []
