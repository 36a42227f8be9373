"""One rule for "an update is on offer": the firmware, the remembered state and the news agree."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fwwatch.events import EventType, diff
from fwwatch.state import ChannelState
from fwwatch.tuya import UpgradeStatus, parse_firmware
from fwwatch.tuya.models import offered_version, update_on_offer

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
VERSIONS = [None, "1.0.0", "1.1.0"]
STATUSES = [*UpgradeStatus, 6, 42]


@pytest.mark.parametrize(
    ("current", "target", "offered"),
    [
        ("1.0.0", "1.1.0", "1.1.0"),
        ("1.0.0", "0.9.0", "0.9.0"),  # a rollback on offer is an offer too
        (None, "1.1.0", "1.1.0"),
        ("1.1.0", "1.1.0", None),
        ("1.0.0", None, None),
        ("1.0.0", "", None),
        (None, None, None),
    ],
)
def test_a_version_is_on_offer_when_the_target_is_not_the_installed_one(
    current: str | None, target: str | None, offered: str | None
) -> None:
    assert offered_version(current, target) == offered


@pytest.mark.parametrize("status", STATUSES)
def test_an_offer_can_be_taken_unless_an_update_is_running(status: int) -> None:
    running = status in (UpgradeStatus.UPGRADING, UpgradeStatus.WAITING_FOR_WAKE)
    assert update_on_offer("1.0.0", "1.1.0", status) is not running
    assert update_on_offer("1.1.0", "1.1.0", status) is False


def remembered(current: str | None, target: str | None, status: int) -> ChannelState:
    return ChannelState(
        device_id="dev1",
        channel=0,
        current_version=current,
        target_version=target,
        upgrade_status=status,
        first_seen=T0,
        last_changed=T0,
    )


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("target", VERSIONS)
@pytest.mark.parametrize("current", VERSIONS)
def test_the_news_announces_exactly_the_offers_the_firmware_reports(
    current: str | None, target: str | None, status: int
) -> None:
    item = {"type": 0, "current_version": current, "version": target, "upgrade_status": status}
    (channel,) = parse_firmware("dev1", [item]).channels
    state = remembered(current, target, status)
    assert state.offered_version == offered_version(current, target)
    # seen for the first time (announced when asked to) and after a sighting with no offer
    first = diff(None, state, notify_first_seen=True)
    later = diff(remembered(current, None, 0), state)
    for news in (first, later):
        announced = any(event.type is EventType.UPDATE_AVAILABLE for event in news)
        assert announced is channel.update_available
