"""From check results to state, from two states to news, and news to messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fwwatch.events import EventType, diff, group_events
from fwwatch.render import render_json, render_slack, render_subject, render_text
from fwwatch.state import (
    DEVICE_LEVEL_CHANNEL,
    ChannelState,
    DeviceInfo,
    changed,
    next_states,
)
from fwwatch.tuya import TuyaDeviceError, parse_firmware

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
PLUG = DeviceInfo(device_name="Kitchen plug", product_id="p-plug", product_name="Smart plug")


def state(
    current: str = "1.0.0", target: str | None = None, status: int = 0, **extra: Any
) -> ChannelState:
    values: dict[str, Any] = {
        "device_id": "dev1",
        "channel": 0,
        "channel_name": "Main module",
        "product_id": "p-plug",
        "product_name": "Smart plug",
        "current_version": current,
        "target_version": target,
        "upgrade_status": status,
        "update_available": bool(target and target != current and status not in (2, 5)),
        "first_seen": T0,
        "last_changed": T0,
    }
    values.update(extra)
    return ChannelState(**values)


def test_first_sighting_is_a_silent_baseline() -> None:
    assert diff(None, state("1.0.0", "2.0.0", 1)) == []


def test_first_sighting_with_notify_first_seen_announces_an_offered_update() -> None:
    (event,) = diff(None, state("1.0.0", "2.0.0", 1), notify_first_seen=True)
    assert event.type is EventType.UPDATE_AVAILABLE
    assert event.target_version == "2.0.0"


def test_a_new_offer_is_update_available() -> None:
    (event,) = diff(state("1.0.0"), state("1.0.0", "2.0.0", 1))
    assert (event.type, event.previous_version, event.version) == (
        EventType.UPDATE_AVAILABLE,
        "1.0.0",
        "2.0.0",
    )


def test_the_same_offer_seen_again_is_no_news() -> None:
    assert diff(state("1.0.0", "2.0.0", 1), state("1.0.0", "2.0.0", 1)) == []


def test_an_update_starting_is_no_news() -> None:
    assert diff(state("1.0.0", "2.0.0", 1), state("1.0.0", "2.0.0", 2)) == []


def test_a_newer_offer_replacing_an_older_one_is_news() -> None:
    (event,) = diff(state("1.0.0", "2.0.0", 1), state("1.0.0", "2.1.0", 1))
    assert event.version == "2.1.0"


def test_an_installed_version_change_is_update_installed() -> None:
    (event,) = diff(state("1.0.0", "2.0.0", 2), state("2.0.0", "2.0.0", 3))
    assert (event.type, event.previous_version, event.current_version) == (
        EventType.UPDATE_INSTALLED,
        "1.0.0",
        "2.0.0",
    )


def test_a_failed_update_is_update_failed_once() -> None:
    (event,) = diff(state("1.0.0", "2.0.0", 2), state("1.0.0", "2.0.0", 4))
    assert event.type is EventType.UPDATE_FAILED
    assert diff(state("1.0.0", "2.0.0", 4), state("1.0.0", "2.0.0", 7)) == []


def test_the_device_level_placeholder_is_never_news() -> None:
    old = state(channel=DEVICE_LEVEL_CHANNEL)
    assert diff(old, state("1.0.0", "9.9.9", 1, channel=DEVICE_LEVEL_CHANNEL)) == []


def channels_only(states: list[ChannelState]) -> list[ChannelState]:
    return [s for s in states if s.channel != DEVICE_LEVEL_CHANNEL]


def device_item(states: list[ChannelState]) -> ChannelState:
    (item,) = [s for s in states if s.channel == DEVICE_LEVEL_CHANNEL]
    return item


def test_next_states_keep_first_seen_and_unchanged_timestamps() -> None:
    firmware = parse_firmware("dev1", [{"type": 0, "current_version": "1.0.0", "version": "1.0.0"}])
    first = next_states("dev1", firmware=firmware, error=None, stored=[], info=PLUG, now=T0)
    again = next_states("dev1", firmware=firmware, error=None, stored=first, info=PLUG, now=T1)
    assert [(s.first_seen, s.last_changed) for s in again] == [(T0, T0), (T0, T0)]
    assert not any(changed(old, new) for old, new in zip(first, again, strict=True))


def test_next_states_mark_a_change_with_its_time() -> None:
    firmware = parse_firmware(
        "dev1", [{"type": 0, "current_version": "1.0.0", "version": "2.0.0", "upgrade_status": 1}]
    )
    (new,) = channels_only(
        next_states("dev1", firmware=firmware, error=None, stored=[state()], now=T1)
    )
    assert changed(state(), new)
    assert (new.first_seen, new.last_changed) == (T0, T1)
    assert new.product_name == "Smart plug"  # kept from the stored state


def test_the_device_item_fingerprints_the_channels() -> None:
    one = parse_firmware("dev1", [{"type": 0, "current_version": "1.0.0"}])
    other = parse_firmware("dev1", [{"type": 0, "current_version": "1.0.1"}])
    digest_one = device_item(
        next_states("dev1", firmware=one, error=None, stored=[], now=T0)
    ).digest
    again = device_item(next_states("dev1", firmware=one, error=None, stored=[], now=T1)).digest
    digest_other = device_item(
        next_states("dev1", firmware=other, error=None, stored=[], now=T0)
    ).digest
    assert digest_one == again != digest_other


def test_an_error_is_recorded_on_the_device_item_once() -> None:
    firmware = parse_firmware("dev1", [{"type": 0, "current_version": "1.0.0"}])
    seen = next_states("dev1", firmware=firmware, error=None, stored=[], now=T0)
    error = TuyaDeviceError("device is offline", code=2001, tid="t1", permanent=False)
    (first,) = next_states("dev1", firmware=None, error=error, stored=seen, now=T1)
    assert first.channel == DEVICE_LEVEL_CHANNEL
    assert first.last_error is not None
    assert first.last_error.code == 2001
    assert first.digest == device_item(seen).digest  # the channels keep what was last seen
    again = TuyaDeviceError("device is offline", code=2001, tid="t2", permanent=False)
    (second,) = next_states("dev1", firmware=None, error=again, stored=[first], now=T1)
    assert not changed(first, second)


def test_an_error_on_an_unknown_device_goes_on_a_new_device_item() -> None:
    error = TuyaDeviceError("no such device", code=2010, tid="t1")
    (item,) = next_states("ghost", firmware=None, error=error, stored=[], info=PLUG, now=T1)
    assert item.channel == DEVICE_LEVEL_CHANNEL
    assert item.last_error is not None
    assert item.last_error.permanent
    assert item.device_name == "Kitchen plug"


def test_a_recovered_device_clears_its_error() -> None:
    error = TuyaDeviceError("offline", code=2001, permanent=False)
    failed = next_states("dev1", firmware=None, error=error, stored=[], now=T0)
    firmware = parse_firmware("dev1", [{"type": 0, "current_version": "1.0.0"}])
    states = next_states("dev1", firmware=firmware, error=None, stored=failed, now=T1)
    assert [(s.channel, s.last_error) for s in states] == [(0, None), (DEVICE_LEVEL_CHANNEL, None)]
    assert changed(failed[0], device_item(states))


def test_state_round_trips_through_its_item_form() -> None:
    original = state("1.0.0", "2.0.0", 1)
    assert ChannelState.from_item(original.to_item()) == original


def release(device_id: str, product: str = "p-plug", version: str = "2.0.0") -> Any:
    old = state("1.0.0", device_id=device_id, product_id=product)
    new = state("1.0.0", version, 1, device_id=device_id, product_id=product)
    return diff(old, new)[0]


def test_events_group_per_type_product_channel_and_version() -> None:
    events = [release(f"d{i:03d}") for i in range(500)] + [release("x1", product="p-lock")]
    groups = group_events(events)
    assert [(g.product_id, g.device_count) for g in groups] == [("p-lock", 1), ("p-plug", 500)]


def test_a_group_counts_each_device_once() -> None:
    event = release("d1")
    (group,) = group_events([event, event])
    assert group.device_count == 1


def test_subject_is_one_line_under_100_characters() -> None:
    long_name = state(product_name="A product with a very long name " * 5)
    event = diff(
        long_name.model_copy(update={"device_id": "d"}),
        long_name.model_copy(
            update={"device_id": "d", "target_version": "2.0.0", "upgrade_status": 1}
        ),
    )[0]
    subject = render_subject(group_events([event])[0])
    assert len(subject) < 100
    assert "\n" not in subject


def test_text_names_what_which_product_versions_and_devices() -> None:
    (group,) = group_events([release(f"d{i:02d}") for i in range(30)])
    text = render_text(group)
    for words in (
        "2.0.0",
        "Smart plug",
        "Main module",
        "1.0.0",
        "30 devices",
        "d00",
        "and 10 more",
    ):
        assert words in text


def test_json_lists_every_device_and_slack_has_a_fallback() -> None:
    (group,) = group_events([release(f"d{i:02d}") for i in range(30)])
    assert len(render_json(group)["devices"]) == 30
    slack = render_slack(group)
    assert slack["text"].startswith("Firmware 2.0.0 is available")
    assert slack["blocks"][0]["type"] == "header"


def test_split_keeps_every_device_once() -> None:
    (group,) = group_events([release(f"d{i:03d}") for i in range(250)])
    parts = group.split(100)
    assert [p.device_count for p in parts] == [100, 100, 50]
    assert sorted(e.device_id for p in parts for e in p.events) == sorted(
        e.device_id for e in group.events
    )
