"""Tuya's official Python SDK, unchanged, against the simulator.

The SDK signs requests its own way (empty access_token header on token calls, no nonce,
query parameters sent by requests); that it works here shows the simulator follows Tuya's
protocol and not only fwwatch's reading of it.
"""

from __future__ import annotations

from typing import Any

import pytest
from tuya_connector import TuyaOpenAPI

from fwwatch.simulator import RunningSimulator, generate_fleet

pytestmark = pytest.mark.integration

HALLWAY = "bf7c19e4a0b2c3d4e5f601"
CELLAR = "bf7c19e4a0b2c3d4e5f604"


def connected(sim: RunningSimulator) -> Any:
    api = TuyaOpenAPI(sim.url, sim.access_id, sim.access_secret)
    assert api.connect()["success"] is True
    return api


def test_the_sdk_connects_and_obtains_a_live_token(simulator: RunningSimulator) -> None:
    # Given the official SDK pointed at the simulator
    api = TuyaOpenAPI(simulator.url, simulator.access_id, simulator.access_secret)

    # When it connects
    answer = api.connect()

    # Then it holds the token the simulator granted
    assert answer["success"] is True
    assert [t.access_token for t in simulator.cloud.live_tokens()] == [api.token_info.access_token]


def test_the_sdk_reads_a_devices_firmware(simulator: RunningSimulator) -> None:
    # Given a connected SDK
    api = connected(simulator)

    # When it reads the hallway sensor's firmware
    answer = api.get(f"/v2.0/cloud/thing/{HALLWAY}/firmware")

    # Then the device's two channels come back
    assert answer["success"] is True
    assert [(c["type"], c["current_version"], c["version"]) for c in answer["result"]] == [
        (3, "1.0.7", "1.0.9"),
        (9, "1.0.1", "1.0.1"),
    ]


def test_the_sdk_reads_a_single_object_firmware_answer(simulator: RunningSimulator) -> None:
    # Given a connected SDK
    api = connected(simulator)

    # When it reads the cellar sensor, answered as one object keyed `channel`
    answer = api.get(f"/v2.0/cloud/thing/{CELLAR}/firmware")

    # Then the object comes back
    assert answer["result"]["channel"] == 3


@pytest.mark.parametrize("simulator", [{"fleet": generate_fleet(45, seed=2)}], indirect=True)
def test_the_sdk_pages_through_the_v2_listing(simulator: RunningSimulator) -> None:
    # Given a connected SDK and 45 devices
    api = connected(simulator)

    # When it pages with page_size and last_id
    seen: list[str] = []
    params: dict[str, Any] = {"page_size": 20}
    for _ in range(10):
        page = api.get("/v2.0/cloud/thing/device", params)["result"]
        seen += [d["id"] for d in page]
        if len(page) < 20:
            break
        params = {"page_size": 20, "last_id": page[-1]["id"]}

    # Then every device is listed once
    assert sorted(seen) == sorted(d.device_id for d in simulator.cloud.fleet.devices)


@pytest.mark.parametrize("simulator", [{"fleet": generate_fleet(450, seed=2)}], indirect=True)
def test_the_sdk_pages_through_the_v13_listing(simulator: RunningSimulator) -> None:
    # Given a connected SDK and 450 devices
    api = connected(simulator)

    # When it pages with page_size and last_row_key
    seen: list[str] = []
    params: dict[str, Any] = {"page_size": 200}
    for _ in range(10):
        result = api.get("/v1.3/iot-03/devices", params)["result"]
        seen += [d["id"] for d in result["list"]]
        if not result["has_more"]:
            break
        params = {"page_size": 200, "last_row_key": result["last_row_key"]}

    # Then every device is listed once
    assert len(seen) == len(set(seen)) == 450


def test_the_sdk_confirms_an_update_with_a_signed_json_body(simulator: RunningSimulator) -> None:
    # Given a connected SDK
    api = connected(simulator)

    # When it POSTs to start the hallway sensor's Zigbee update, with a JSON body
    answer = api.post(f"/v2.0/cloud/thing/{HALLWAY}/firmware/3", {"confirm": True})

    # Then the body hash it signed matches and the update starts
    assert answer["result"] is True
    progress = api.get(f"/v2.0/cloud/thing/{HALLWAY}/firmware/3/progress")["result"]
    assert progress["upgrade_status"] == 2


@pytest.mark.parametrize("simulator", [{"token_ttl_s": 30}], indirect=True)
def test_the_sdk_refreshes_a_token_near_expiry_by_its_own_path(
    simulator: RunningSimulator,
) -> None:
    # Given a connected SDK whose token lives 30 s (the SDK refreshes 60 s ahead)
    api = connected(simulator)
    first = api.token_info.access_token

    # When it makes a business call
    answer = api.get(f"/v2.0/cloud/thing/{HALLWAY}/firmware")

    # Then it refreshed through /v1.0/token/{refresh_token} first and the call succeeded
    stats = simulator.cloud.stats.snapshot()
    assert answer["success"] is True
    assert (stats["grants"], stats["refreshes"]) == (1, 1)
    assert api.token_info.access_token != first


def test_the_sdk_is_refused_with_a_wrong_secret(simulator: RunningSimulator) -> None:
    # Given the SDK configured with a wrong secret
    api = TuyaOpenAPI(simulator.url, simulator.access_id, "not-the-secret")

    # When it connects
    answer = api.connect()

    # Then the simulator says the signature is invalid
    assert (answer["success"], answer["code"]) == (False, 1004)
