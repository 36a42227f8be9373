"""A device channel's state as Home Assistant's MQTT update entity: topics, payloads, changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from fwwatch.homeassistant import (
    Retained,
    config_topic,
    entity_messages,
    retained_changes,
    state_topic,
    validate_discovery_prefix,
)
from fwwatch.state import DEVICE_LEVEL_CHANNEL, ChannelState
from tests.homeassistant_schema import config_problems, discovery_parts, state_problems

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
PLUG = "bf3a61c0e2d94f5b8a01c7"
SENSOR = "bf7c19e4a0b2c3d4e5f601"


def channel(device_id: str = PLUG, number: int = 0, **facts: Any) -> ChannelState:
    values: dict[str, Any] = {
        "device_id": device_id,
        "channel": number,
        "channel_name": "Main module",
        "device_name": "Kitchen plug",
        "product_id": "keyjup78v54myhan",
        "product_name": "Smart Plug 16A",
        "current_version": "1.2.0",
        "target_version": "1.2.0",
        "first_seen": NOW,
        "last_changed": NOW,
    }
    return ChannelState(**(values | facts))


def decoded(state: ChannelState, prefix: str = "homeassistant") -> tuple[Any, Any]:
    config, update = entity_messages(state, prefix)
    return json.loads(config.payload), json.loads(update.payload)


def published(*states: ChannelState, prefix: str = "homeassistant") -> dict[str, Retained]:
    """What a broker holds once these states were published."""
    return {m.topic: m for s in states for m in entity_messages(s, prefix)}


# ------------------------------------------------------------------------ one entity


def test_a_channel_is_an_update_entity_home_assistant_accepts() -> None:
    # Given a plug's main module
    # When it becomes an entity
    config, update = entity_messages(channel(), "homeassistant")

    # Then the config is under the discovery topic and Home Assistant's schema takes it
    assert config.topic == f"homeassistant/update/fwwatch/{PLUG}_0/config"
    assert discovery_parts(config.topic, "homeassistant") == {
        "component": "update",
        "node_id": "fwwatch",
        "object_id": f"{PLUG}_0",
    }
    body = json.loads(config.payload)
    assert config_problems(body) == []
    assert body["unique_id"] == f"fwwatch_{PLUG}_0"
    assert body["state_topic"] == update.topic == f"fwwatch/{PLUG}/0/state"
    assert body["device_class"] == "firmware"
    assert body["device"] == {
        "identifiers": [f"fwwatch_{PLUG}"],
        "name": "Kitchen plug",
        "manufacturer": "Tuya",
        "model": "Smart Plug 16A",
    }
    assert state_problems(json.loads(update.payload)) == []


def test_an_entity_offers_no_install() -> None:
    # fwwatch watches firmware; installing is the Tuya app's business.
    config, _ = decoded(channel(target_version="1.3.0", upgrade_status=1))
    assert "command_topic" not in config
    assert "payload_install" not in config


def test_a_version_on_offer_is_the_latest_version() -> None:
    # Given an offer of 1.3.0 to a plug on 1.2.0
    _, update = decoded(channel(target_version="1.3.0", upgrade_status=1))

    # Then Home Assistant sees an update: latest differs from installed
    assert update == {
        "installed_version": "1.2.0",
        "latest_version": "1.3.0",
        "title": "Smart Plug 16A Main module firmware",
        "release_summary": "Firmware 1.3.0 is on offer in the Tuya cloud; 1.2.0 is installed.",
        "in_progress": False,
    }


def test_without_an_offer_the_latest_version_is_the_installed_one() -> None:
    _, update = decoded(channel(target_version="1.2.0", upgrade_status=3))
    assert (update["installed_version"], update["latest_version"]) == ("1.2.0", "1.2.0")
    assert update["in_progress"] is False


def test_an_update_under_way_is_in_progress() -> None:
    _, update = decoded(channel(target_version="1.3.0", upgrade_status=2))
    assert update["in_progress"] is True
    assert update["latest_version"] == "1.3.0"
    assert "being installed" in update["release_summary"]


def test_a_failed_update_is_said_in_the_summary() -> None:
    _, update = decoded(channel(target_version="1.3.0", upgrade_status=4))
    assert update["in_progress"] is False
    assert "did not complete (failed)" in update["release_summary"]


def test_names_from_tuya_stay_in_payloads_and_never_reach_a_topic() -> None:
    # Given a device whose user-chosen name is hostile to topics and to JSON
    hostile = 'plug/#/+\u0000"}\n' + "x" * 300
    config, update = entity_messages(
        channel(device_name=hostile, product_name=hostile, channel_name=hostile), "ha"
    )

    # Then the topics are made of the ID and channel only, and the name is JSON-encoded
    assert config.topic == f"ha/update/fwwatch/{PLUG}_0/config"
    assert update.topic == f"fwwatch/{PLUG}/0/state"
    assert json.loads(config.payload)["device"]["name"] == hostile
    assert len(json.loads(update.payload)["release_summary"]) <= 255


def test_a_channel_without_names_still_has_a_name_and_a_model() -> None:
    bare = channel(device_name=None, product_name=None, product_id=None, channel_name="")
    config, update = decoded(bare)
    assert config_problems(config) == []
    assert config["name"] == "Channel 0 firmware"
    assert (config["device"]["name"], config["device"]["model"]) == (PLUG, "Tuya device")
    assert update["title"] == "Channel 0 firmware"


def test_a_device_id_unfit_for_a_topic_is_refused() -> None:
    with pytest.raises(ValueError, match="device ID"):
        entity_messages(channel(device_id="a/b#"), "homeassistant")


def test_one_state_always_gives_the_same_payloads() -> None:
    # Timestamps and trace ids are not in the payloads: an unchanged channel is unchanged.
    later = channel(last_changed=datetime(2027, 1, 1, tzinfo=UTC), run_id="r2")
    assert entity_messages(later, "ha") == entity_messages(channel(), "ha")


@pytest.mark.parametrize("prefix", ["homeassistant", "ha/discovery", "my-ha_2"])
def test_a_discovery_prefix_home_assistant_can_use_is_accepted(prefix: str) -> None:
    assert validate_discovery_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["", "ha/#", "ha/+/x", "/ha", "ha/", "ha//x", "h\na", "h\0a"])
def test_a_discovery_prefix_that_is_no_topic_level_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="must"):
        validate_discovery_prefix(prefix)


# ------------------------------------------------------------------------ what to publish


def test_the_first_time_every_channel_is_published_configs_first() -> None:
    # Given a plug and a two-channel sensor, and their device items
    states = [
        channel(),
        channel(SENSOR, 3, channel_name="Zigbee"),
        channel(SENSOR, 9, channel_name="MCU"),
        channel(SENSOR, DEVICE_LEVEL_CHANNEL, channel_name="device"),
    ]

    # When nothing was published yet
    changes = retained_changes(states, prefix="ha", published={}, project={PLUG, SENSOR})

    # Then one config and one state per channel (none for the device items), configs first
    topics = [m.topic for m in changes]
    assert topics == [
        f"ha/update/fwwatch/{PLUG}_0/config",
        f"ha/update/fwwatch/{SENSOR}_3/config",
        f"ha/update/fwwatch/{SENSOR}_9/config",
        f"fwwatch/{PLUG}/0/state",
        f"fwwatch/{SENSOR}/3/state",
        f"fwwatch/{SENSOR}/9/state",
    ]


def test_nothing_is_published_when_nothing_changed() -> None:
    states = [channel(), channel(SENSOR, 3)]
    changes = retained_changes(
        states, prefix="ha", published=published(*states, prefix="ha"), project={PLUG, SENSOR}
    )
    assert changes == []


def test_a_new_offer_publishes_the_state_only() -> None:
    # Given a plug published on 1.2.0
    before = published(channel())

    # When 1.3.0 is offered
    changes = retained_changes(
        [channel(target_version="1.3.0", upgrade_status=1)],
        prefix="homeassistant",
        published=before,
        project={PLUG},
    )

    # Then only its state is published again, with the new latest version
    assert [m.topic for m in changes] == [state_topic(PLUG, 0)]
    assert json.loads(changes[0].payload)["latest_version"] == "1.3.0"


def test_a_device_that_left_the_project_has_its_topics_cleared() -> None:
    # Given a plug and a sensor published
    states = [channel(), channel(SENSOR, 3)]
    before = published(*states)

    # When a listing of the whole project no longer shows the sensor
    changes = retained_changes(states, prefix="homeassistant", published=before, project={PLUG})

    # Then the sensor's config and state are cleared, and nothing else is sent
    assert changes == [
        Retained(config_topic("homeassistant", SENSOR, 3), SENSOR, ""),
        Retained(state_topic(SENSOR, 3), SENSOR, ""),
    ]


def test_without_a_whole_listing_no_device_is_cleared() -> None:
    # Given a plug and a sensor published, and a run of --devices PLUG (no listing)
    states = [channel(), channel(SENSOR, 3)]
    changes = retained_changes(
        states, prefix="homeassistant", published=published(*states), project=None
    )
    # Then the sensor keeps its entity
    assert changes == []


def test_a_cleared_device_stays_cleared_until_a_listing_shows_it_again() -> None:
    # Given a sensor cleared when it left the project
    states = [channel(), channel(SENSOR, 3)]
    cleared = published(channel()) | {
        topic: Retained(topic, SENSOR, "")
        for topic in (config_topic("homeassistant", SENSOR, 3), state_topic(SENSOR, 3))
    }

    # When a run without a listing publishes, nothing comes back
    assert retained_changes(states, prefix="homeassistant", published=cleared, project=None) == []

    # When a listing shows it again, its entity comes back
    back = retained_changes(
        states, prefix="homeassistant", published=cleared, project={PLUG, SENSOR}
    )
    assert [m.topic for m in back] == [
        config_topic("homeassistant", SENSOR, 3),
        state_topic(SENSOR, 3),
    ]


def test_a_new_discovery_prefix_moves_the_configs() -> None:
    # Given a plug published under the prefix "homeassistant"
    before = published(channel())

    # When the prefix becomes "ha"
    changes = retained_changes([channel()], prefix="ha", published=before, project=None)

    # Then the config is published under "ha" and cleared under "homeassistant"
    assert [(m.topic, m.clears) for m in changes] == [
        (config_topic("ha", PLUG, 0), False),
        (config_topic("homeassistant", PLUG, 0), True),
    ]
