"""Parsing the firmware endpoint's answers, whatever shape Tuya sends."""

import pytest

from fwwatch.tuya import InvalidDeviceIdError, TuyaResponseError, parse_firmware
from fwwatch.tuya.models import DeviceSummary, validate_device_id

DOC_EXAMPLE = {
    "channel": 0,
    "current_version": "1.0.0",
    "version": "2.0.0",
    "upgrade_type": 1,
    "timeout": 60,
    "upgrade_status": 1,
    "type_desc": "Bluetooth",
    "desc": "Firmware update",
    "control_type": 0,
}


def test_single_object_keyed_channel_is_one_channel() -> None:
    firmware = parse_firmware("dev1", DOC_EXAMPLE)
    (channel,) = firmware.channels
    assert channel.channel == 0
    assert channel.current_version == "1.0.0"
    assert channel.target_version == "2.0.0"
    assert channel.channel_name == "Bluetooth"
    assert channel.update_available


def test_list_keyed_type_gives_every_channel() -> None:
    result = [
        {"type": 0, "current_version": "1.0.0", "version": "1.0.0", "upgrade_status": 0},
        {"type": 9, "current_version": "2.1.0", "version": "2.2.0", "upgrade_status": 1},
    ]
    firmware = parse_firmware("dev1", result)
    assert [c.channel for c in firmware.channels] == [0, 9]
    assert [c.update_available for c in firmware.channels] == [False, True]
    assert firmware.channels[1].channel_name == "MCU"
    assert firmware.update_available


def test_unknown_fields_and_unknown_status_are_accepted() -> None:
    result = [
        {"type": 12, "upgrade_status": 42, "brand_new_field": {"x": 1}, "current_version": "1"}
    ]
    (channel,) = parse_firmware("dev1", result).channels
    assert channel.upgrade_status == 42
    assert channel.status_name == "status 42"
    assert channel.channel_name == "Extension 12"


def test_file_size_as_string_becomes_an_integer() -> None:
    (channel,) = parse_firmware("d", [{"type": 1, "file_size": "123456"}]).channels
    assert channel.file_size == 123456


def test_blank_strings_mean_not_given() -> None:
    (channel,) = parse_firmware("d", [{"type": 1, "file_size": "", "version": " "}]).channels
    assert channel.file_size is None
    assert channel.target_version is None


def test_same_target_as_installed_is_no_update() -> None:
    (channel,) = parse_firmware(
        "d", {"type": 0, "current_version": "1.2", "version": "1.2"}
    ).channels
    assert not channel.update_available


def test_running_update_is_not_offered_again() -> None:
    result = {"type": 0, "current_version": "1.0", "version": "2.0", "upgrade_status": 2}
    (channel,) = parse_firmware("d", result).channels
    assert channel.update_running
    assert not channel.update_available


def test_failed_update_is_still_available_and_marked_failed() -> None:
    result = {"type": 0, "current_version": "1.0", "version": "2.0", "upgrade_status": 7}
    (channel,) = parse_firmware("d", result).channels
    assert channel.update_failed
    assert channel.update_available


def test_empty_result_is_a_device_without_channels() -> None:
    assert parse_firmware("d", None).channels == ()
    assert parse_firmware("d", []).channels == ()


@pytest.mark.parametrize("result", ["text", 42, [1, 2], [{"no_channel": 1}], [{"type": "zero"}]])
def test_unreadable_results_raise_a_typed_error(result: object) -> None:
    with pytest.raises(TuyaResponseError) as caught:
        parse_firmware("dev9", result, tid="abc")
    assert "dev9" in caught.value.msg
    assert caught.value.tid == "abc"


def test_json_dump_names_the_documented_fields() -> None:
    (channel,) = parse_firmware("d", DOC_EXAMPLE).channels
    dumped = channel.model_dump()
    for key in ("channel", "channel_name", "current_version", "target_version", "upgrade_status"):
        assert key in dumped
    assert dumped["update_available"] is True


@pytest.mark.parametrize("device_id", ["bf1234567890abcdef12", "vdev1243432", "eb_3-AZ", "a" * 64])
def test_tuya_like_ids_are_valid(device_id: str) -> None:
    assert validate_device_id(device_id) == device_id


@pytest.mark.parametrize(
    "device_id",
    [
        "../v1.0/token",
        "a/b",
        "..",
        "abc%2F",
        "abc def",
        " abc",
        "abc\n",
        "abc\x00",
        "abc?x=1",
        "abc#f",
        "dévice",
        "",
        "a" * 65,
        "a" * 1000,
    ],
)
def test_hostile_ids_are_rejected_with_a_clear_error(device_id: str) -> None:
    with pytest.raises(InvalidDeviceIdError) as caught:
        validate_device_id(device_id)
    assert "device ID" in str(caught.value)


def test_non_string_id_is_rejected() -> None:
    with pytest.raises(InvalidDeviceIdError):
        validate_device_id(123)


def test_device_summary_reads_camel_case_and_snake_case() -> None:
    thing = DeviceSummary.model_validate(
        {"id": "d1", "customName": "Plug", "productId": "p1", "isOnline": True, "category": "cz"}
    )
    iot = DeviceSummary.model_validate(
        {"id": "d1", "name": "Plug", "product_id": "p1", "online": True, "category": "cz"}
    )
    assert thing == iot
