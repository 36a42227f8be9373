"""SimulatedCloud's rules, driven through `handle` without sockets."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from fwwatch.simulator import (
    DEFAULT_ACCESS_ID,
    DEFAULT_ACCESS_SECRET,
    Fleet,
    FleetDevice,
    SimulatedCloud,
    UnknownDeviceError,
    build_signed_headers,
    demo_fleet,
    generate_fleet,
)

START = 1_700_000_000.0
HALLWAY = "bf7c19e4a0b2c3d4e5f601"  # demo: sensor, list/type, update offered on Zigbee
CELLAR = "bf7c19e4a0b2c3d4e5f604"  # demo: sensor, object/channel
GARAGE = "bf3a61c0e2d94f5b8a04f2"  # demo: offline plug answering 2001
KITCHEN = "bf3a61c0e2d94f5b8a01c7"  # demo: plug, up to date
PLUG_PRODUCT = "keyjup78v54myhan"
FIRMWARE = "/v2.0/cloud/thing/{}/firmware"


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Driver:
    """Signs requests like a correct client whose clock agrees with the cloud's."""

    def __init__(self, cloud: SimulatedCloud, clock: FakeClock) -> None:
        self.cloud = cloud
        self.clock = clock
        self.token = ""

    def raw(
        self,
        path: str,
        query: dict[str, str] | None = None,
        *,
        method: str = "GET",
        body: bytes = b"",
        token: str | None = None,
    ) -> Any:
        headers = build_signed_headers(
            method,
            path,
            access_id=DEFAULT_ACCESS_ID,
            access_secret=DEFAULT_ACCESS_SECRET,
            t_ms=int(self.clock.now * 1000),
            query=query,
            body=body,
            access_token=self.token if token is None else token,
        )
        return self.cloud.handle(method, path, query or {}, headers, body)

    def call(self, path: str, query: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
        answer = self.raw(path, query, **kw)
        assert answer.status == 200
        parsed: dict[str, Any] = json.loads(answer.body)
        return parsed

    def grant(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("/v1.0/token", {"grant_type": "1"})["result"]
        self.token = result["access_token"]
        return result

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        return self.call(f"/v1.0/token/{refresh_token}")

    def firmware(self, device_id: str) -> dict[str, Any]:
        return self.call(FIRMWARE.format(device_id))


def make(fleet: Fleet | None = None, **kwargs: Any) -> tuple[SimulatedCloud, Driver, FakeClock]:
    clock = FakeClock()
    cloud = SimulatedCloud(fleet if fleet is not None else demo_fleet(), clock=clock, **kwargs)
    return cloud, Driver(cloud, clock), clock


@pytest.fixture
def sim() -> tuple[SimulatedCloud, Driver, FakeClock]:
    return make()


@pytest.fixture
def driver(sim: tuple[SimulatedCloud, Driver, FakeClock]) -> Driver:
    sim[1].grant()
    return sim[1]


def device(device_id: str, **overrides: Any) -> FleetDevice:
    base: dict[str, Any] = {
        "device_id": device_id,
        "name": device_id,
        "product_id": "p1",
        "product_name": "P",
        "category": "cz",
        "channels": [{"channel": 0, "current_version": "1.0.0"}],
    }
    return FleetDevice.model_validate(base | overrides)


# --------------------------------------------------------------------------- tokens


def test_a_grant_returns_a_token_pair_with_the_configured_lifetime() -> None:
    # Given a cloud whose tokens live 600 s
    _, drv, _ = make(token_ttl_s=600)

    # When a token is granted
    result = drv.grant()

    # Then the pair, the lifetime and a user id come back
    assert re.fullmatch(r"[0-9a-f]{32}", result["access_token"])
    assert re.fullmatch(r"[0-9a-f]{32}", result["refresh_token"])
    assert result["expire_time"] == 600
    assert result["uid"]


def test_a_grant_with_another_grant_type_is_refused() -> None:
    # Given a cloud
    _, drv, _ = make()

    # When a token is asked for with grant_type=2
    answer = drv.call("/v1.0/token", {"grant_type": "2"})

    # Then the grant type is refused
    assert (answer["code"], answer["msg"]) == (1003, "grant type invalid")


def test_a_granted_token_authorises_business_calls(driver: Driver) -> None:
    # Given a granted token (fixture)
    # When a business call is made with it
    answer = driver.firmware(KITCHEN)

    # Then it succeeds
    assert answer["success"] is True


def test_a_business_call_without_a_token_is_refused_as_token_invalid() -> None:
    # Given a client that never asked for a token
    _, drv, _ = make()

    # When it calls a business API
    answer = drv.firmware(KITCHEN)

    # Then it is told its token is invalid
    assert (answer["code"], answer["msg"]) == (1010, "token invalid")


def test_a_new_grant_revokes_the_previous_access_token(driver: Driver) -> None:
    # Given a first token, then a second grant for the same Access ID
    first = driver.token
    driver.grant()

    # When the first token is used
    answer = driver.call(FIRMWARE.format(KITCHEN), token=first)

    # Then it is dead
    assert answer["code"] == 1010


def test_a_new_grant_revokes_the_previous_refresh_token(driver: Driver) -> None:
    # Given a refresh token from a first grant, then a second grant
    first_refresh = driver.cloud.live_tokens()[0].refresh_token
    driver.grant()

    # When the old refresh token is used
    answer = driver.refresh(first_refresh)

    # Then it is refused
    assert answer["code"] == 1012


def test_without_revoke_on_grant_an_older_token_stays_valid() -> None:
    # Given a cloud that keeps every granted token
    _, drv, _ = make(revoke_on_grant=False)
    first = drv.grant()["access_token"]
    drv.grant()

    # When the first token is used
    answer = drv.call(FIRMWARE.format(KITCHEN), token=first)

    # Then it still works
    assert answer["success"] is True


def test_a_refresh_returns_a_new_pair_that_works(driver: Driver) -> None:
    # Given a granted pair
    old = driver.cloud.live_tokens()[0]

    # When it is refreshed
    result = driver.refresh(old.refresh_token)["result"]
    driver.token = result["access_token"]

    # Then the new pair is different and authorises calls
    assert result["access_token"] != old.access_token
    assert result["refresh_token"] != old.refresh_token
    assert driver.firmware(KITCHEN)["success"] is True


def test_a_refresh_invalidates_the_old_access_token(driver: Driver) -> None:
    # Given a pair that has been refreshed
    old = driver.cloud.live_tokens()[0]
    driver.refresh(old.refresh_token)

    # When the old access token is used
    answer = driver.call(FIRMWARE.format(KITCHEN), token=old.access_token)

    # Then it is dead
    assert answer["code"] == 1010


def test_a_refresh_token_works_only_once(driver: Driver) -> None:
    # Given a refresh token used once
    refresh_token = driver.cloud.live_tokens()[0].refresh_token
    driver.refresh(refresh_token)

    # When it is used again
    answer = driver.refresh(refresh_token)

    # Then the token status is invalid
    assert (answer["code"], answer["msg"]) == (1012, "token status is invalid")


def test_an_unknown_refresh_token_is_refused() -> None:
    # Given a cloud
    _, drv, _ = make()

    # When a refresh token it never issued is used
    answer = drv.refresh("0" * 32)

    # Then it is refused with 1012
    assert answer["code"] == 1012


def test_a_token_is_still_valid_one_second_before_it_expires() -> None:
    # Given a token living 7200 s
    _, drv, clock = make()
    drv.grant()

    # When it is used at 7199 s
    clock.advance(7199)
    answer = drv.firmware(KITCHEN)

    # Then it works
    assert answer["success"] is True


def test_a_token_is_refused_as_expired_once_its_lifetime_is_over() -> None:
    # Given a token living 7200 s
    _, drv, clock = make()
    drv.grant()

    # When it is used at 7200 s
    clock.advance(7200)
    answer = drv.firmware(KITCHEN)

    # Then it is refused with 1010, saying it expired
    assert (answer["code"], answer["msg"]) == (1010, "token is expired")


def test_an_expired_access_token_can_still_be_refreshed() -> None:
    # Given an expired access token
    _, drv, clock = make()
    refresh_token = drv.grant()["refresh_token"]
    clock.advance(8000)

    # When its refresh token is used
    answer = drv.refresh(refresh_token)

    # Then a new pair comes back
    assert answer["success"] is True


# --------------------------------------------------------------------------- firmware


def test_firmware_of_a_list_device_lists_every_channel_keyed_type(driver: Driver) -> None:
    # Given the hallway sensor: Zigbee 1.0.7 offered 1.0.9, MCU 1.0.1 current
    # When its firmware is read
    result = driver.firmware(HALLWAY)["result"]

    # Then both channels come back with Tuya's field names
    assert isinstance(result, list)
    zigbee, mcu = result
    assert zigbee["type"] == 3
    assert zigbee["type_desc"] == "Zigbee"
    assert (zigbee["current_version"], zigbee["version"]) == ("1.0.7", "1.0.9")
    assert zigbee["upgrade_status"] == 1
    assert mcu["type"] == 9
    assert "channel" not in zigbee


def test_a_channel_without_an_offer_reports_its_current_version_as_target(
    driver: Driver,
) -> None:
    # Given the hallway sensor's MCU, which has no update offered
    # When its firmware is read
    mcu = driver.firmware(HALLWAY)["result"][1]

    # Then version equals current_version and the status is idle
    assert mcu["version"] == mcu["current_version"] == "1.0.1"
    assert mcu["upgrade_status"] == 0


def test_firmware_of_an_object_device_is_its_first_channel_keyed_channel(
    driver: Driver,
) -> None:
    # Given the cellar sensor, configured like Tuya's doc example
    # When its firmware is read
    result = driver.firmware(CELLAR)["result"]

    # Then the result is one object, keyed `channel`
    assert isinstance(result, dict)
    assert result["channel"] == 3
    assert "type" not in result


def test_firmware_carries_every_documented_core_field(driver: Driver) -> None:
    # Given any device
    # When its firmware is read
    channel = driver.firmware(KITCHEN)["result"][0]

    # Then the core fields are all there
    assert set(channel) >= {
        "upgrade_status",
        "current_version",
        "version",
        "type",
        "type_desc",
        "desc",
        "upgrade_type",
        "control_type",
        "timeout",
        "dev_type",
        "can_upgrade",
    }


def test_optional_firmware_fields_appear_when_the_fleet_sets_them() -> None:
    # Given a channel with the optional documented extras
    extras = {
        "remind": "battery too low",
        "file_size": "204800",
        "firmware_deploy_time": 1_690_000_000_000,
        "last_upgrade_time": 1_691_000_000_000,
        "can_upgrade": False,
        "name": "Custom module",
    }
    ch = {"channel": 12, "current_version": "1.0", "target_version": "1.1", **extras}
    _, drv, _ = make(Fleet(devices=[device("d1", channels=[ch])]))
    drv.grant()

    # When the firmware is read
    channel = drv.firmware("d1")["result"][0]

    # Then they are reported as given
    assert channel["remind"] == "battery too low"
    assert channel["file_size"] == "204800"
    assert channel["firmware_deploy_time"] == 1_690_000_000_000
    assert channel["last_upgrade_time"] == 1_691_000_000_000
    assert channel["can_upgrade"] is False
    assert channel["type_desc"] == "Custom module"


def test_firmware_of_an_unknown_device_is_permission_denied(driver: Driver) -> None:
    # Given a device id not in the project
    # When its firmware is read
    answer = driver.firmware("bf0000000000000000dead")

    # Then Tuya's answer for a foreign device comes back
    assert (answer["code"], answer["msg"]) == (1106, "permission deny")


@pytest.mark.parametrize(
    ("code", "msg"),
    [
        (2001, "device is offline"),
        (1106, "permission deny"),
        (2009, "not support this device"),
        (2010, "device not exist"),
    ],
)
def test_a_device_error_is_answered_with_its_code_and_message(code: int, msg: str) -> None:
    # Given a device configured to fail with `code`
    _, drv, _ = make(Fleet(devices=[device("d1", error=code)]))
    drv.grant()

    # When its firmware is read
    answer = drv.firmware("d1")

    # Then that Tuya error comes back
    assert answer["success"] is False
    assert (answer["code"], answer["msg"]) == (code, msg)


def test_a_removed_device_leaves_the_listing_and_is_permission_denied(
    sim: tuple[SimulatedCloud, Driver, FakeClock],
) -> None:
    # Given the demo fleet, its kitchen plug's firmware read once (and cached)
    cloud, drv, _ = sim
    drv.grant()
    assert drv.firmware(KITCHEN)["success"] is True

    # When the plug is taken out of the project
    cloud.remove_device(KITCHEN)

    # Then no listing shows it, and its firmware is another project's
    listed = [i for page in page_through_v2(drv, 20) for i in page]
    by_product = drv.call(
        "/v1.3/iot-03/devices", {"source_type": "product", "source_id": PLUG_PRODUCT}
    )
    assert KITCHEN not in listed
    assert len(listed) == len(demo_fleet().devices) - 1
    assert KITCHEN not in [d["id"] for d in by_product["result"]["list"]]
    assert drv.firmware(KITCHEN)["code"] == 1106
    with pytest.raises(UnknownDeviceError):
        cloud.mark_installed(KITCHEN)


def test_the_demo_offline_device_answers_device_offline(driver: Driver) -> None:
    # Given the demo's garage plug
    # When its firmware is read
    answer = driver.firmware(GARAGE)

    # Then it is offline
    assert answer["code"] == 2001


# --------------------------------------------------------------------------- listings


def page_through_v2(drv: Driver, page_size: int) -> list[list[str]]:
    pages: list[list[str]] = []
    last_id = ""
    for _ in range(100):  # bounded, so a paging bug fails instead of looping forever
        query = {"page_size": str(page_size)} | ({"last_id": last_id} if last_id else {})
        page = drv.call("/v2.0/cloud/thing/device", query)["result"]
        pages.append([d["id"] for d in page])
        if len(page) < page_size:
            return pages
        last_id = page[-1]["id"]
    raise AssertionError("the listing never ended")


def test_the_v2_listing_pages_through_every_device_in_id_order() -> None:
    # Given 45 devices
    fleet = generate_fleet(45, seed=3)
    _, drv, _ = make(fleet)
    drv.grant()

    # When they are listed 20 at a time
    pages = page_through_v2(drv, 20)

    # Then three pages hold every device once, sorted by id
    assert [len(p) for p in pages] == [20, 20, 5]
    listed = [i for p in pages for i in p]
    assert listed == sorted(d.device_id for d in fleet.devices)


def test_the_v2_listing_after_the_last_device_is_empty() -> None:
    # Given 40 devices listed in two full pages
    fleet = generate_fleet(40, seed=4)
    _, drv, _ = make(fleet)
    drv.grant()

    # When the page after the last id is asked for
    pages = page_through_v2(drv, 20)

    # Then it is empty, which ends the loop
    assert [len(p) for p in pages] == [20, 20, 0]


def test_the_v2_listing_uses_camel_case_fields(driver: Driver) -> None:
    # Given the demo fleet
    # When the first device is listed
    item = driver.call("/v2.0/cloud/thing/device", {"page_size": "1"})["result"][0]

    # Then its fields are camelCase as in Tuya's v2 answers
    assert set(item) >= {"id", "name", "customName", "productId", "productName", "isOnline"}
    assert item["id"] == "bf09f4be7d21c8a6e55b01"
    assert item["productName"] == "Bluetooth Door Lock"


def test_the_v2_listing_reports_offline_devices_as_offline(driver: Driver) -> None:
    # Given the demo's offline garage plug
    # When all devices are listed
    items = driver.call("/v2.0/cloud/thing/device", {"page_size": "20"})["result"]

    # Then only that one is offline
    assert [d["id"] for d in items if not d["isOnline"]] == [GARAGE]


def test_the_v2_listing_without_page_size_returns_up_to_twenty(driver: Driver) -> None:
    # Given the 12-device demo fleet
    # When the listing is asked for without page_size
    items = driver.call("/v2.0/cloud/thing/device")["result"]

    # Then all 12 come back
    assert len(items) == 12


@pytest.mark.parametrize("page_size", ["0", "21", "-1", "abc", ""])
def test_the_v2_listing_refuses_a_page_size_outside_1_to_20(driver: Driver, page_size: str) -> None:
    # Given a page size Tuya does not accept
    # When the listing is asked for
    answer = driver.call("/v2.0/cloud/thing/device", {"page_size": page_size})

    # Then it is an illegal parameter
    assert (answer["code"], answer["msg"]) == (1109, "param is illegal, please check it")


def test_the_v13_listing_pages_with_an_opaque_row_key_until_has_more_is_false() -> None:
    # Given 450 devices
    fleet = generate_fleet(450, seed=5)
    _, drv, _ = make(fleet)
    drv.grant()

    # When they are listed 200 at a time
    pages: list[dict[str, Any]] = []
    query = {"page_size": "200"}
    for _ in range(10):  # bounded, so a paging bug fails instead of looping forever
        result = drv.call("/v1.3/iot-03/devices", query)["result"]
        pages.append(result)
        if not result["has_more"]:
            break
        query = {"page_size": "200", "last_row_key": result["last_row_key"]}

    # Then three pages cover all devices once, each saying the total
    assert [len(p["list"]) for p in pages] == [200, 200, 50]
    assert [p["has_more"] for p in pages] == [True, True, False]
    assert {p["total"] for p in pages} == {450}
    listed = [d["id"] for p in pages for d in p["list"]]
    assert sorted(listed) == sorted(d.device_id for d in fleet.devices)
    assert len(set(listed)) == 450


def test_the_v13_row_key_is_not_a_device_id(driver: Driver) -> None:
    # Given the first page of the v1.3 listing
    result = driver.call("/v1.3/iot-03/devices", {"page_size": "2"})["result"]

    # Then the cursor is opaque, so clients cannot rely on it being an id
    assert result["last_row_key"] not in {d["id"] for d in result["list"]}


def test_the_v13_listing_uses_snake_case_fields(driver: Driver) -> None:
    # Given the demo fleet
    # When one device is listed
    item = driver.call("/v1.3/iot-03/devices", {"page_size": "1"})["result"]["list"][0]

    # Then its fields are snake_case as in Tuya's v1.3 answers
    assert set(item) >= {"id", "name", "product_id", "product_name", "online", "category"}


def test_the_v13_listing_accepts_a_page_of_200(driver: Driver) -> None:
    # Given the 12-device demo fleet
    # When 200 are asked for
    result = driver.call("/v1.3/iot-03/devices", {"page_size": "200"})["result"]

    # Then all come back and there is no more
    assert (len(result["list"]), result["has_more"]) == (12, False)


@pytest.mark.parametrize("page_size", ["0", "201"])
def test_the_v13_listing_refuses_a_page_size_outside_1_to_200(
    driver: Driver, page_size: str
) -> None:
    # Given a page size out of range
    # When the listing is asked for
    answer = driver.call("/v1.3/iot-03/devices", {"page_size": page_size})

    # Then it is an illegal parameter
    assert answer["code"] == 1109


def test_the_v13_listing_filters_by_product_source(driver: Driver) -> None:
    # Given the demo fleet's four plugs
    # When the listing is scoped to the plug product
    result = driver.call(
        "/v1.3/iot-03/devices",
        {"page_size": "50", "source_type": "product", "source_id": PLUG_PRODUCT},
    )["result"]

    # Then only plugs are listed
    assert result["total"] == 4
    assert {d["product_id"] for d in result["list"]} == {PLUG_PRODUCT}


def test_the_v13_listing_refuses_an_unknown_source_type(driver: Driver) -> None:
    # Given a source type Tuya does not define
    # When the listing is asked for
    answer = driver.call("/v1.3/iot-03/devices", {"page_size": "5", "source_type": "galaxy"})

    # Then it is an illegal parameter
    assert answer["code"] == 1109


def test_the_v13_listing_refuses_a_garbled_row_key(driver: Driver) -> None:
    # Given a cursor the cloud never issued
    # When the listing is asked for
    answer = driver.call("/v1.3/iot-03/devices", {"page_size": "5", "last_row_key": "zz!"})

    # Then it is an illegal parameter
    assert answer["code"] == 1109


# --------------------------------------------------------------------------- routing


def test_an_unknown_path_is_answered_uri_path_invalid(driver: Driver) -> None:
    # Given a path the simulator does not serve
    # When it is called
    answer = driver.call("/v1.0/devices/x/nothing")

    # Then Tuya's bad-path error comes back
    assert (answer["code"], answer["msg"]) == (1108, "uri path invalid")


def test_a_known_path_with_the_wrong_method_is_answered_uri_path_invalid(
    driver: Driver,
) -> None:
    # Given the firmware path called with DELETE
    # When it is called
    answer = driver.call(FIRMWARE.format(KITCHEN), method="DELETE")

    # Then it is a bad path
    assert answer["code"] == 1108


def test_every_envelope_carries_the_server_time_and_a_trace_id(driver: Driver) -> None:
    # Given a success and a failure
    ok = driver.firmware(KITCHEN)
    failed = driver.firmware("unknown")

    # Then both carry `t` in ms from the cloud's clock and distinct 32-hex trace ids
    for answer in (ok, failed):
        assert answer["t"] == int(START * 1000)
        assert re.fullmatch(r"[0-9a-f]{32}", answer["tid"])
    assert ok["tid"] != failed["tid"]


def test_errors_can_use_the_error_code_field_names() -> None:
    # Given a cloud answering errors the way some v2 pages do
    _, drv, _ = make(error_fields="error_code")
    drv.grant()

    # When a call fails
    answer = drv.firmware("unknown")

    # Then the code and message are under error_code / error_msg
    assert (answer["error_code"], answer["error_msg"]) == (1106, "permission deny")
    assert "code" not in answer


# --------------------------------------------------------------------------- rate limit


def test_requests_over_the_per_second_limit_are_refused() -> None:
    # Given a limit of 3 requests per second per API
    cloud, drv, _ = make(rate_limit_rps=3)
    drv.grant()

    # When 4 firmware calls arrive in the same instant
    codes = [drv.firmware(KITCHEN).get("code") for _ in range(4)]

    # Then the fourth is refused with the configured code and counted
    assert codes == [None, None, None, 1110]
    assert cloud.stats.rejected == 1


def test_the_rate_limit_window_slides_with_the_clock() -> None:
    # Given a limit of 2 per second, used up
    _, drv, clock = make(rate_limit_rps=2)
    drv.grant()
    drv.firmware(KITCHEN)
    clock.advance(0.5)
    drv.firmware(KITCHEN)

    # When 0.6 s later (1.1 s after the first call) another arrives
    clock.advance(0.6)
    answer = drv.firmware(KITCHEN)

    # Then the first call has left the window and it is accepted
    assert answer["success"] is True


def test_the_rate_limit_counts_each_api_separately() -> None:
    # Given a limit of 1 per second, used up on the firmware API
    _, drv, _ = make(rate_limit_rps=1)
    drv.grant()
    drv.firmware(KITCHEN)

    # When the listing API is called in the same instant
    answer = drv.call("/v2.0/cloud/thing/device", {"page_size": "5"})

    # Then it is not limited
    assert answer["success"] is True


def test_firmware_calls_for_different_devices_share_one_rate_limit() -> None:
    # Given a limit of 1 per second, used on one device
    _, drv, _ = make(rate_limit_rps=1)
    drv.grant()
    drv.firmware(KITCHEN)

    # When another device's firmware is read in the same instant
    answer = drv.firmware(HALLWAY)

    # Then the route, not the device, is what is limited
    assert answer["code"] == 1110


def test_the_rate_limit_code_is_configurable() -> None:
    # Given a cloud answering 1199 when limiting
    _, drv, _ = make(rate_limit_rps=1, rate_limit_code=1199)
    drv.grant()
    drv.firmware(KITCHEN)

    # When the limit is exceeded
    answer = drv.firmware(KITCHEN)

    # Then 1199 comes back with Tuya's message
    assert (answer["code"], answer["msg"]) == (1199, "your requests are too frequent")


# --------------------------------------------------------------------------- faults


def test_latency_delays_every_response(driver: Driver) -> None:
    # Given 40 ms of latency
    driver.cloud.faults.set_latency(0.04)

    # When a call is answered
    answer = driver.raw(FIRMWARE.format(KITCHEN))

    # Then the server is told to wait 40 ms
    assert answer.delay_s == pytest.approx(0.04)


def test_jitter_adds_a_random_delay_within_its_range(driver: Driver) -> None:
    # Given 20 ms latency with up to 10 ms jitter
    driver.cloud.faults.set_latency(0.02, jitter_s=0.01)

    # When many calls are answered
    delays = [driver.raw(FIRMWARE.format(KITCHEN)).delay_s for _ in range(50)]

    # Then each delay is in range and they vary
    assert all(0.02 <= d <= 0.03 for d in delays)
    assert len(set(delays)) > 1


def test_an_injected_error_answers_the_next_n_business_calls(driver: Driver) -> None:
    # Given an injected 1111 for two calls
    driver.cloud.faults.inject_error(1111, count=2)

    # When three calls are made
    answers = [driver.firmware(KITCHEN) for _ in range(3)]

    # Then the first two fail with 1111 and the third succeeds
    assert [a.get("code") for a in answers] == [1111, 1111, None]
    assert answers[0]["msg"] == "system is busy, please try again later"


def test_an_injected_error_only_hits_matching_paths(driver: Driver) -> None:
    # Given an error injected for the hallway sensor only
    driver.cloud.faults.inject_error(2001, path_contains=HALLWAY)

    # When another device and then the hallway sensor are read
    other = driver.firmware(KITCHEN)
    hallway = driver.firmware(HALLWAY)

    # Then only the hallway sensor fails
    assert other["success"] is True
    assert hallway["code"] == 2001


def test_an_injected_error_spares_token_calls() -> None:
    # Given an injected error pending before the client has a token
    cloud, drv, _ = make()
    cloud.faults.inject_error(500)

    # When the client gets a token and then makes a business call
    drv.grant()
    answer = drv.firmware(KITCHEN)

    # Then the grant worked and the business call took the error
    assert (answer["code"], answer["msg"]) == (500, "system error, please contact the admin")


def test_an_injected_error_can_carry_its_own_message(driver: Driver) -> None:
    # Given an error with a custom message
    driver.cloud.faults.inject_error(28841004, msg="quota used up")

    # When a call is made
    answer = driver.firmware(KITCHEN)

    # Then the message is the injected one
    assert (answer["code"], answer["msg"]) == (28841004, "quota used up")


def test_an_injected_http_status_answers_with_a_plain_body(driver: Driver) -> None:
    # Given an injected 503
    driver.cloud.faults.inject_http_status(503)

    # When a call is made
    answer = driver.raw(FIRMWARE.format(KITCHEN))

    # Then it is a bare 503, not an envelope, and is counted
    assert answer.status == 503
    assert answer.content_type == "text/plain"
    assert driver.cloud.stats.by_code["http_503"] == 1


def test_an_injected_429_can_carry_retry_after(driver: Driver) -> None:
    # Given an injected 429 asking to retry after 2 s
    driver.cloud.faults.inject_http_status(429, retry_after=2)

    # When a call is made
    answer = driver.raw(FIRMWARE.format(KITCHEN))

    # Then the header says so
    assert (answer.status, answer.headers["Retry-After"]) == (429, "2")


def test_an_injected_http_status_is_used_up_after_its_count(driver: Driver) -> None:
    # Given an injected 502 for one request
    driver.cloud.faults.inject_http_status(502)

    # When two calls are made
    first = driver.raw(FIRMWARE.format(KITCHEN))
    second = driver.raw(FIRMWARE.format(KITCHEN))

    # Then only the first is affected
    assert (first.status, second.status) == (502, 200)


def test_a_truncated_response_is_not_valid_json(driver: Driver) -> None:
    # Given a truncation fault
    driver.cloud.faults.inject_malformed(kind="truncated")

    # When a call is answered
    answer = driver.raw(FIRMWARE.format(KITCHEN))

    # Then the body cannot be parsed
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.body)


def test_a_not_json_response_is_an_html_page_with_status_200(driver: Driver) -> None:
    # Given a not-JSON fault
    driver.cloud.faults.inject_malformed(kind="not_json")

    # When a call is answered
    answer = driver.raw(FIRMWARE.format(KITCHEN))

    # Then a 200 carries an HTML page
    assert answer.status == 200
    assert answer.body.startswith(b"<html>")


def test_a_missing_result_response_is_a_success_without_result(driver: Driver) -> None:
    # Given a missing-result fault
    driver.cloud.faults.inject_malformed(kind="missing_result")

    # When a call is answered
    answer = json.loads(driver.raw(FIRMWARE.format(KITCHEN)).body)

    # Then success is true but there is no result
    assert answer["success"] is True
    assert "result" not in answer


def test_a_hang_holds_back_only_the_next_matching_response(driver: Driver) -> None:
    # Given a 5 s hang on top of 10 ms latency
    driver.cloud.faults.set_latency(0.01)
    driver.cloud.faults.inject_hang(5)

    # When two calls are answered
    delays = [driver.raw(FIRMWARE.format(KITCHEN)).delay_s for _ in range(2)]

    # Then the first waits latency + 5 s, the second only latency
    assert delays == [pytest.approx(5.01), pytest.approx(0.01)]


def test_revoked_tokens_are_refused(driver: Driver) -> None:
    # Given all tokens revoked
    driver.cloud.revoke_tokens()

    # When the old token is used
    answer = driver.firmware(KITCHEN)

    # Then it is invalid
    assert answer["code"] == 1010


def test_revoked_tokens_cannot_be_refreshed(driver: Driver) -> None:
    # Given a refresh token whose pair has been revoked
    refresh_token = driver.cloud.live_tokens()[0].refresh_token
    driver.cloud.revoke_tokens()

    # When it is used
    answer = driver.refresh(refresh_token)

    # Then it is refused
    assert answer["code"] == 1012


def test_tokens_are_revoked_after_n_more_business_calls(driver: Driver) -> None:
    # Given revocation scheduled after 3 business calls
    driver.cloud.revoke_tokens_after(3)

    # When five calls are made
    answers = [driver.firmware(KITCHEN) for _ in range(5)]

    # Then three succeed and the rest find the token dead
    assert [a.get("code") for a in answers] == [None, None, None, 1010, 1010]


def test_expired_tokens_are_refused_as_expired(driver: Driver) -> None:
    # Given every token forced to expire
    driver.cloud.expire_tokens()

    # When the token is used
    answer = driver.firmware(KITCHEN)

    # Then it is refused as expired
    assert (answer["code"], answer["msg"]) == (1010, "token is expired")


def test_a_clock_offset_beyond_five_minutes_makes_requests_time_invalid(
    driver: Driver,
) -> None:
    # Given the simulator's clock running 301 s ahead of the client's
    driver.cloud.faults.clock_offset_s = 301

    # When the client calls
    answer = driver.firmware(KITCHEN)

    # Then its `t` is refused, and the envelope tells the cloud's time
    assert answer["code"] == 1013
    assert answer["t"] == int((START + 301) * 1000)


def test_a_clock_offset_within_five_minutes_is_tolerated(driver: Driver) -> None:
    # Given the simulator's clock running 299 s behind
    driver.cloud.faults.clock_offset_s = -299

    # When the client calls
    answer = driver.firmware(KITCHEN)

    # Then the call works
    assert answer["success"] is True


def test_clearing_faults_removes_pending_injections(driver: Driver) -> None:
    # Given pending faults of every kind
    faults = driver.cloud.faults
    faults.set_latency(1)
    faults.inject_error(500)
    faults.inject_http_status(503)
    faults.inject_malformed()
    faults.inject_hang(9)

    # When they are cleared
    faults.clear()
    answer = driver.raw(FIRMWARE.format(KITCHEN))

    # Then the next call is clean
    assert (answer.status, answer.delay_s) == (200, 0.0)
    assert json.loads(answer.body)["success"] is True


@pytest.mark.parametrize(
    ("inject", "match"),
    [
        (lambda f: f.inject_error(500, count=0), "count"),
        (lambda f: f.inject_http_status(99), "HTTP status"),
        (lambda f: f.inject_malformed(kind="weird"), "malformed kind"),
        (lambda f: f.inject_hang(-1), "seconds"),
        (lambda f: f.set_latency(-0.1), "latency"),
    ],
    ids=["zero count", "bad status", "bad kind", "negative hang", "negative latency"],
)
def test_nonsense_fault_settings_are_refused(inject: Any, match: str) -> None:
    # Given a cloud
    cloud, _, _ = make()

    # When a nonsense fault is asked for, then it is refused
    with pytest.raises(ValueError, match=match):
        inject(cloud.faults)


# --------------------------------------------------------------------------- admin


def test_publishing_a_release_offers_it_to_every_device_of_the_product(driver: Driver) -> None:
    # Given the demo's four plugs
    # When 1.3.0 is published on the main module
    changed = driver.cloud.publish_release(PLUG_PRODUCT, 0, "1.3.0")

    # Then all four are offered it, with status 1 (update available)
    assert changed == 4
    kitchen = driver.firmware(KITCHEN)["result"][0]
    assert (kitchen["version"], kitchen["upgrade_status"]) == ("1.3.0", 1)
    assert kitchen["current_version"] == "1.2.0"


def test_publishing_a_release_skips_devices_already_on_it(driver: Driver) -> None:
    # Given plugs on 1.2.0 (three) and 1.1.x (one online, one offline)
    # When 1.2.0 is published
    changed = driver.cloud.publish_release(PLUG_PRODUCT, 0, "1.2.0")

    # Then only the two older plugs are offered it
    assert changed == 2
    assert driver.firmware(KITCHEN)["result"][0]["upgrade_status"] == 0


def test_publishing_a_release_ignores_devices_without_that_channel(driver: Driver) -> None:
    # Given plugs, which only have channel 0
    # When a Zigbee (3) release is published for the plug product
    changed = driver.cloud.publish_release(PLUG_PRODUCT, 3, "9.9.9")

    # Then nothing changes
    assert changed == 0


def test_marking_an_update_installed_moves_the_target_to_current(driver: Driver) -> None:
    # Given the hallway sensor's Zigbee update on offer
    # When it is marked installed
    changed = driver.cloud.mark_installed(HALLWAY)

    # Then the channel reports 1.0.9 installed, nothing newer, and status 3 (finished)
    zigbee = driver.firmware(HALLWAY)["result"][0]
    assert changed == 1
    assert (zigbee["current_version"], zigbee["version"]) == ("1.0.9", "1.0.9")
    assert zigbee["upgrade_status"] == 3


def test_marking_an_update_installed_on_one_channel_leaves_the_others(driver: Driver) -> None:
    # Given a release on the hallway sensor's MCU as well as its Zigbee offer
    driver.cloud.publish_release("qhivvyqawogv04e4", 9, "1.0.2")

    # When only the MCU update is marked installed
    driver.cloud.mark_installed(HALLWAY, channel=9)

    # Then the Zigbee offer is still pending
    zigbee, mcu = driver.firmware(HALLWAY)["result"]
    assert (zigbee["upgrade_status"], mcu["upgrade_status"]) == (1, 3)


def test_marking_an_update_failed_keeps_the_offer_with_a_failed_status(driver: Driver) -> None:
    # Given the hallway sensor's Zigbee update on offer
    # When it is marked failed
    driver.cloud.mark_failed(HALLWAY)

    # Then versions are unchanged and the status is 4
    zigbee = driver.firmware(HALLWAY)["result"][0]
    assert (zigbee["current_version"], zigbee["version"], zigbee["upgrade_status"]) == (
        "1.0.7",
        "1.0.9",
        4,
    )


def test_setting_and_clearing_a_device_error(driver: Driver) -> None:
    # Given the kitchen plug made to answer 2009
    driver.cloud.set_device_error(KITCHEN, 2009)
    failing = driver.firmware(KITCHEN)

    # When the error is cleared
    driver.cloud.set_device_error(KITCHEN, None)
    cleared = driver.firmware(KITCHEN)

    # Then it failed before and works after
    assert failing["code"] == 2009
    assert cleared["success"] is True


def test_admin_actions_on_an_unknown_device_raise(driver: Driver) -> None:
    # Given a device id not in the fleet
    # When it is marked installed, then the mistake is reported
    with pytest.raises(UnknownDeviceError):
        driver.cloud.mark_installed("nope")


def test_starting_an_offered_update_sets_it_updating(driver: Driver) -> None:
    # Given the hallway sensor's Zigbee offer
    # When the update is confirmed
    started = driver.call(FIRMWARE.format(HALLWAY) + "/3", method="POST", body=b"{}")
    progress = driver.call(FIRMWARE.format(HALLWAY) + "/3/progress")

    # Then it is accepted and reports status 2 (updating)
    assert started["result"] is True
    assert progress["result"] == {"upgrade_status": 2, "progress": 0}


def test_starting_an_update_on_a_channel_without_an_offer_is_refused(driver: Driver) -> None:
    # Given the hallway sensor's MCU, which has nothing offered
    # When its update is confirmed
    answer = driver.call(FIRMWARE.format(HALLWAY) + "/9", method="POST")

    # Then it is an illegal parameter
    assert answer["code"] == 1109


def test_the_progress_of_an_installed_update_is_complete(driver: Driver) -> None:
    # Given the hallway sensor's Zigbee update installed
    driver.cloud.mark_installed(HALLWAY, channel=3)

    # When its progress is read
    progress = driver.call(FIRMWARE.format(HALLWAY) + "/3/progress")["result"]

    # Then it is finished at 100 %
    assert progress == {"upgrade_status": 3, "progress": 100}


def test_admin_changes_apply_to_the_fleet_object(driver: Driver) -> None:
    # Given a release published through the cloud
    driver.cloud.publish_release(PLUG_PRODUCT, 0, "1.3.0")

    # When the fleet is inspected
    kitchen = driver.cloud.fleet.get(KITCHEN)

    # Then it holds the offer
    assert kitchen is not None
    assert kitchen.channels[0].target_version == "1.3.0"


# --------------------------------------------------------------------------- stats


def test_stats_count_requests_by_api_outcome_grants_and_refreshes(driver: Driver) -> None:
    # Given a grant (fixture), a refresh, two firmware reads (one failing) and a bad path
    driver.refresh(driver.cloud.live_tokens()[0].refresh_token)
    driver.token = driver.cloud.live_tokens()[0].access_token
    driver.firmware(KITCHEN)
    driver.firmware("unknown")
    driver.call("/v9/nothing")

    # When the stats are read
    stats = driver.cloud.stats.snapshot()

    # Then each is counted where expected
    assert stats["requests"] == 5
    assert (stats["grants"], stats["refreshes"]) == (1, 1)
    assert stats["by_api"] == {
        "GET /v1.0/token": 1,
        "GET /v1.0/token/{refresh_token}": 1,
        "GET /v2.0/cloud/thing/{device_id}/firmware": 2,
        "GET (unknown path)": 1,
    }
    assert stats["by_code"] == {"success": 3, "1106": 1, "1108": 1}


def test_resetting_stats_zeroes_every_counter(driver: Driver) -> None:
    # Given some traffic
    driver.firmware(KITCHEN)

    # When the stats are reset
    driver.cloud.reset_stats()

    # Then everything is zero
    assert driver.cloud.stats.snapshot() == {
        "requests": 0,
        "grants": 0,
        "refreshes": 0,
        "rejected": 0,
        "by_api": {},
        "by_code": {},
    }


# --------------------------------------------------------------------------- bad days


def test_an_error_every_nth_call_hits_only_those(driver: Driver) -> None:
    # Given 1199 on every third business call, for a minute
    driver.cloud.faults.inject_error(1199, count=None, every=3, for_s=60)
    # When six calls are made, then the third and the sixth are refused
    codes = [driver.firmware(KITCHEN).get("code") for _ in range(6)]
    assert codes == [None, None, 1199, None, None, 1199]


def test_a_timed_outage_ends_by_itself() -> None:
    import time

    cloud, drv, _ = make()
    cloud.faults.inject_http_status(503, count=None, for_s=0.2)
    assert drv.raw("/v1.0/token", {"grant_type": "1"}).status == 503
    time.sleep(0.25)
    assert drv.raw("/v1.0/token", {"grant_type": "1"}).status == 200


def test_an_unlimited_injection_needs_an_end() -> None:
    cloud, _, _ = make()
    with pytest.raises(ValueError, match="needs for_s"):
        cloud.faults.inject_http_status(503, count=None)


@pytest.mark.parametrize(
    ("calls", "grant_code", "firmware_code"),
    [("token", 1106, None), ("business", None, 1106), ("any", 1106, 1106)],
)
def test_a_tuya_code_can_answer_token_calls_business_calls_or_both(
    calls: str, grant_code: int | None, firmware_code: int | None
) -> None:
    cloud, drv, _ = make()
    drv.grant()
    cloud.faults.inject_error(1106, count=None, calls=calls, for_s=60)  # type: ignore[arg-type]
    grant = drv.call("/v1.0/token", {"grant_type": "1"})
    if grant.get("success"):
        drv.token = grant["result"]["access_token"]
    firmware = drv.firmware(KITCHEN)
    assert (grant.get("code"), firmware.get("code")) == (grant_code, firmware_code)


def test_tokens_are_revoked_every_nth_business_call(driver: Driver) -> None:
    # Given revocation after every second business call
    driver.cloud.revoke_tokens_every(2)
    answers = []
    for _ in range(3):
        answers += [driver.firmware(KITCHEN).get("code") for _ in range(3)]
        driver.grant()
    # Then two calls go through per token, the third finds it dead, every time
    assert answers == [None, None, 1010] * 3


def test_the_listing_can_be_spelled_in_snake_case(driver: Driver) -> None:
    driver.cloud.set_listing_fields("snake_case")
    item = driver.call("/v2.0/cloud/thing/device", {"page_size": "1"})["result"][0]
    assert {"is_online", "custom_name", "product_id", "product_name"} <= set(item)
    assert not {"isOnline", "customName", "productId"} & set(item)


def test_a_decompression_bomb_is_a_small_gzip_body_of_a_huge_answer(driver: Driver) -> None:
    import zlib

    driver.cloud.faults.inject_bomb(64 * 2**20, path_contains="firmware")
    answer = driver.raw(FIRMWARE.format(KITCHEN))
    assert answer.headers["Content-Encoding"] == "gzip"
    assert len(answer.body) < 2**20
    inflated = zlib.decompressobj(31).decompress(answer.body, 64)
    assert inflated.startswith(b'{"success":true')
    assert json.loads(driver.raw(FIRMWARE.format(KITCHEN)).body)["success"]  # used up


def test_a_drip_marks_only_the_next_matching_answer(driver: Driver) -> None:
    driver.cloud.faults.inject_drip(0.5, path_contains="firmware")
    assert driver.raw(FIRMWARE.format(KITCHEN)).drip_interval_s == 0.5
    assert driver.raw(FIRMWARE.format(KITCHEN)).drip_interval_s == 0.0
