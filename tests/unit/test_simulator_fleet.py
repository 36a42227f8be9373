"""Fleet files, the fleet generator and the demo fleet."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fwwatch.simulator import (
    Fleet,
    FleetChannel,
    FleetDevice,
    FleetFileError,
    channel_name,
    demo_fleet,
    generate_fleet,
    load_fleet,
)

YAML_FLEET = """\
devices:
  - device_id: bf0123456789abcdef0123
    name: Kitchen plug
    product_id: keyjup78v54myhan
    product_name: Smart Plug 16A
    category: cz
    channels:
      - channel: 0
        current_version: 1.2.0
        target_version: 1.3.0
  - device_id: bf0123456789abcdef0124
    name: Front door lock
    product_id: ufojxcnrl2xvmfp1
    product_name: Bluetooth Door Lock
    category: ms
    online: false
    error: 2001
    shape: object
    channel_key: channel
    channels:
      - {channel: 1, current_version: "2.3.0", dev_type: 1}
"""


def a_device(**overrides: Any) -> dict[str, Any]:
    return {
        "device_id": "d1",
        "name": "Plug",
        "product_id": "p1",
        "product_name": "Plug",
        "category": "cz",
        "channels": [{"channel": 0, "current_version": "1.0.0"}],
    } | overrides


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_a_yaml_fleet_file_loads(tmp_path: Path, suffix: str) -> None:
    # Given a YAML fleet file
    path = tmp_path / f"fleet{suffix}"
    path.write_text(YAML_FLEET)

    # When it is loaded
    fleet = load_fleet(path)

    # Then both devices are there with their settings
    plug, lock = fleet.devices
    assert plug.channels[0].target_version == "1.3.0"
    assert (lock.online, lock.error, lock.shape, lock.channel_key) == (
        False,
        2001,
        "object",
        "channel",
    )
    assert lock.channels[0].dev_type == 1


def test_a_json_fleet_file_loads(tmp_path: Path) -> None:
    # Given a JSON fleet file
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps({"devices": [a_device(device_id="abc")]}))

    # When it is loaded
    fleet = load_fleet(path)

    # Then the device is there and can be looked up by id
    found = fleet.get("abc")
    assert found is not None
    assert found.name == "Plug"


def test_an_offered_version_without_a_status_is_marked_available(tmp_path: Path) -> None:
    # Given the YAML fleet, whose plug has a target version but no upgrade_status
    path = tmp_path / "fleet.yaml"
    path.write_text(YAML_FLEET)

    # When it is loaded
    plug = load_fleet(path).devices[0].channels[0]

    # Then the status is 1 (update available)
    assert plug.upgrade_status == 1


def test_an_explicit_status_is_kept_even_with_an_offer() -> None:
    # Given a channel with an offer and status 4 (failed)
    channel = FleetChannel(channel=0, current_version="1", target_version="2", upgrade_status=4)

    # Then the status stays 4
    assert channel.upgrade_status == 4


def test_a_target_equal_to_the_current_version_is_no_offer() -> None:
    # Given a channel whose target equals its current version
    channel = FleetChannel(channel=0, current_version="1.0", target_version="1.0")

    # Then no update is offered
    assert (channel.has_update, channel.upgrade_status) == (False, 0)


@pytest.mark.parametrize(
    ("channel", "name"),
    [(0, "Main module"), (1, "Bluetooth"), (3, "Zigbee"), (9, "MCU"), (12, "Extension channel 12")],
)
def test_a_channel_is_described_by_tuyas_module_name(channel: int, name: str) -> None:
    # Given a channel without a name
    # Then its type_desc is Tuya's module name for the number
    assert FleetChannel(channel=channel, current_version="1").type_desc == name
    assert channel_name(channel) == name


def test_invalid_yaml_is_reported_with_the_file_name(tmp_path: Path) -> None:
    # Given a file that is not YAML
    path = tmp_path / "broken.yaml"
    path.write_text("devices: [unclosed\n")

    # When it is loaded, then the error names the file and says it is not YAML
    with pytest.raises(FleetFileError, match=r"broken\.yaml: invalid YAML"):
        load_fleet(path)


def test_invalid_json_is_reported_with_the_file_and_line(tmp_path: Path) -> None:
    # Given a JSON file broken on line 2
    path = tmp_path / "broken.json"
    path.write_text('{"devices":\n [,]}')

    # When it is loaded, then the error names the file and the line
    with pytest.raises(FleetFileError, match=r"broken\.json: invalid JSON at line 2"):
        load_fleet(path)


def test_a_missing_field_is_reported_with_its_location(tmp_path: Path) -> None:
    # Given a device whose channel lacks current_version
    path = tmp_path / "fleet.json"
    device = a_device(channels=[{"channel": 0}])
    path.write_text(json.dumps({"devices": [device]}))

    # When it is loaded, then the error points at devices.0.channels.0.current_version
    with pytest.raises(
        FleetFileError, match=r"fleet\.json: .*devices\.0\.channels\.0\.current_version"
    ):
        load_fleet(path)


def test_a_wrong_shape_value_is_reported(tmp_path: Path) -> None:
    # Given a device with a shape Tuya does not use
    path = tmp_path / "fleet.yaml"
    path.write_text(json.dumps({"devices": [a_device(shape="table")]}))

    # When it is loaded, then the error names the field
    with pytest.raises(FleetFileError, match=r"devices\.0\.shape"):
        load_fleet(path)


def test_an_unknown_field_is_reported_rather_than_ignored(tmp_path: Path) -> None:
    # Given a device with a misspelt field
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps({"devices": [a_device(onlien=False)]}))

    # When it is loaded, then the misspelling is named
    with pytest.raises(FleetFileError, match="onlien"):
        load_fleet(path)


def test_a_file_without_a_devices_list_is_refused(tmp_path: Path) -> None:
    # Given a YAML file holding a bare list
    path = tmp_path / "fleet.yaml"
    path.write_text("- device_id: x\n")

    # When it is loaded, then it says what the top level should be
    with pytest.raises(FleetFileError, match="'devices' list"):
        load_fleet(path)


def test_an_unsupported_extension_is_refused(tmp_path: Path) -> None:
    # Given a .toml file
    path = tmp_path / "fleet.toml"
    path.write_text("")

    # When it is loaded, then the extension is named
    with pytest.raises(FleetFileError, match=r"unsupported fleet file type '\.toml'"):
        load_fleet(path)


def test_a_missing_file_is_reported_with_its_name(tmp_path: Path) -> None:
    # Given a path with no file
    path = tmp_path / "absent.yaml"

    # When it is loaded, then the error names it
    with pytest.raises(FleetFileError, match=r"absent\.yaml: cannot read"):
        load_fleet(path)


def test_duplicate_device_ids_are_refused() -> None:
    # Given two devices with the same id
    # When the fleet is built, then the duplicate is named
    with pytest.raises(ValidationError, match="duplicate device_id 'd1'"):
        Fleet.model_validate({"devices": [a_device(), a_device()]})


def test_duplicate_channels_in_a_device_are_refused() -> None:
    # Given a device listing channel 0 twice
    channels = [{"channel": 0, "current_version": "1"}, {"channel": 0, "current_version": "2"}]

    # When it is built, then the duplicate is reported
    with pytest.raises(ValidationError, match="duplicate channel"):
        FleetDevice.model_validate(a_device(channels=channels))


def test_a_device_id_with_a_slash_is_refused() -> None:
    # Given an id that could not be used in a URL path
    # When the device is built, then it is refused
    with pytest.raises(ValidationError, match="device_id"):
        FleetDevice.model_validate(a_device(device_id="a/b"))


def test_the_generator_is_deterministic_for_a_seed() -> None:
    # Given two fleets generated with the same seed
    first = generate_fleet(300, seed=7)
    second = generate_fleet(300, seed=7)

    # Then they are identical
    assert first.model_dump() == second.model_dump()


def test_different_seeds_give_different_fleets() -> None:
    # Given fleets generated with two seeds
    first = generate_fleet(50, seed=1)
    second = generate_fleet(50, seed=2)

    # Then their device ids differ
    assert {d.device_id for d in first.devices}.isdisjoint(d.device_id for d in second.devices)


def test_generated_ids_look_like_tuya_ids_and_are_unique() -> None:
    # Given a generated fleet
    fleet = generate_fleet(2000)

    # Then ids are 20-22 lowercase alphanumerics, all different
    ids = [d.device_id for d in fleet.devices]
    assert all(re.fullmatch(r"[a-z0-9]{20,22}", i) for i in ids)
    assert len(set(ids)) == 2000


def test_fifty_thousand_devices_are_generated_with_unique_ids() -> None:
    # Given a request for 50,000 devices (how fast that is, is make bench's to say)
    # When they are generated
    fleet = generate_fleet(50_000)
    # Then all are there, each once
    assert len({device.device_id for device in fleet.devices}) == 50_000


def test_the_generator_spreads_devices_over_its_products_channel_layouts() -> None:
    # Given a generated fleet
    fleet = generate_fleet(400)

    # Then each default product's channel layout appears
    layouts = {tuple(c.channel for c in d.channels) for d in fleet.devices}
    assert layouts == {(0,), (3, 9), (0, 3), (1,)}


def test_the_generator_makes_door_locks_low_power_single_objects() -> None:
    # Given a generated fleet
    fleet = generate_fleet(40)

    # Then its Bluetooth locks are low-power devices answered as one object
    locks = [d for d in fleet.devices if d.category == "ms"]
    assert locks
    assert all(d.shape == "object" and d.channels[0].dev_type == 1 for d in locks)


def test_the_generator_offers_updates_to_roughly_the_asked_share() -> None:
    # Given 5,000 devices with a 20 % update share
    fleet = generate_fleet(5000, update_ratio=0.2, offline_ratio=0.0)

    # Then about a fifth are offered an update, each with status 1
    offered = [d for d in fleet.devices if any(c.has_update for c in d.channels)]
    assert 800 < len(offered) < 1200
    assert all(c.upgrade_status == 1 for d in offered for c in d.channels if c.has_update)


def test_generated_offline_devices_answer_device_offline() -> None:
    # Given 5,000 devices with a 5 % offline share
    fleet = generate_fleet(5000, offline_ratio=0.05)

    # Then about that many are offline, each carrying error 2001
    offline = [d for d in fleet.devices if not d.online]
    assert 150 < len(offline) < 350
    assert {d.error for d in offline} == {2001}


def test_a_generated_fleet_survives_a_round_trip_through_a_file(tmp_path: Path) -> None:
    # Given a generated fleet written as JSON
    fleet = generate_fleet(30, seed=9)
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(fleet.model_dump(mode="json")))

    # When it is loaded back
    loaded = load_fleet(path)

    # Then it is the same fleet
    assert loaded.model_dump() == fleet.model_dump()


def test_the_demo_fleet_has_twelve_devices_of_four_products() -> None:
    # Given the demo fleet
    fleet = demo_fleet()

    # Then it has 12 devices of 4 products
    assert len(fleet.devices) == 12
    assert len({d.product_id for d in fleet.devices}) == 4


def test_the_demo_fleet_mixes_answer_shapes_and_keys() -> None:
    # Given the demo fleet
    fleet = demo_fleet()

    # Then every (shape, key) combination used by Tuya's docs is present
    combos = {(d.shape, d.channel_key) for d in fleet.devices}
    assert {("list", "type"), ("list", "channel"), ("object", "channel")} <= combos


def test_the_demo_fleet_has_one_offline_device_and_one_offered_update() -> None:
    # Given the demo fleet
    fleet = demo_fleet()

    # Then exactly one device answers 2001 and exactly one is offered an update
    assert [d.name for d in fleet.devices if d.error == 2001] == ["Garage plug"]
    offered = [d.name for d in fleet.devices if any(c.has_update for c in d.channels)]
    assert offered == ["Hallway sensor"]
