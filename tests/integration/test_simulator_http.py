"""The simulator over real HTTP: the OpenAPI paths, the /_sim/ admin API, latency, stats."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import httpx
import pytest

from fwwatch.simulator import (
    RunningSimulator,
    SimulatedCloud,
    build_signed_headers,
    demo_fleet,
    generate_fleet,
    running_simulator,
)

pytestmark = pytest.mark.integration

HALLWAY = "bf7c19e4a0b2c3d4e5f601"
KITCHEN = "bf3a61c0e2d94f5b8a01c7"
PLUG_PRODUCT = "keyjup78v54myhan"
MakeSimulator = Callable[..., RunningSimulator]


def signed(
    sim: RunningSimulator,
    path: str,
    *,
    token: str = "",
    query: dict[str, str] | None = None,
    method: str = "GET",
) -> dict[str, str]:
    return build_signed_headers(
        method,
        path,
        access_id=sim.access_id,
        access_secret=sim.access_secret,
        t_ms=int(time.time() * 1000),
        query=query,
        access_token=token,
    )


def get_token(sim: RunningSimulator) -> str:
    query = {"grant_type": "1"}
    answer = httpx.get(
        f"{sim.url}/v1.0/token", params=query, headers=signed(sim, "/v1.0/token", query=query)
    ).json()
    token: str = answer["result"]["access_token"]
    return token


def firmware(sim: RunningSimulator, token: str, device_id: str) -> dict[str, Any]:
    path = f"/v2.0/cloud/thing/{device_id}/firmware"
    answer: dict[str, Any] = httpx.get(
        sim.url + path, headers=signed(sim, path, token=token)
    ).json()
    return answer


def admin(sim: RunningSimulator, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    if body is None:
        return httpx.get(f"{sim.url}/_sim/{path}")
    return httpx.post(f"{sim.url}/_sim/{path}", json=body)


def test_a_signed_client_gets_a_token_and_firmware_over_http(simulator: RunningSimulator) -> None:
    # Given a running demo simulator and a token
    token = get_token(simulator)

    # When the hallway sensor's firmware is read over HTTP
    answer = firmware(simulator, token, HALLWAY)

    # Then its offered Zigbee update comes back
    assert answer["success"] is True
    assert answer["result"][0]["version"] == "1.0.9"


def test_answers_are_json_with_tuyas_content_type(simulator: RunningSimulator) -> None:
    # Given a running simulator
    # When any OpenAPI path is called
    response = httpx.get(f"{simulator.url}/v1.0/token?grant_type=1")

    # Then the envelope comes with HTTP 200 and a JSON content type
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["code"] == 1005


def test_a_release_published_over_the_admin_api_is_offered(simulator: RunningSimulator) -> None:
    # Given a token
    token = get_token(simulator)

    # When plug firmware 1.3.0 is published through the admin API
    response = admin(
        simulator, "releases", {"product_id": PLUG_PRODUCT, "channel": 0, "version": "1.3.0"}
    )

    # Then four plugs are updated and the kitchen plug offers it
    assert response.json() == {"updated": 4}
    assert firmware(simulator, token, KITCHEN)["result"][0]["version"] == "1.3.0"


def test_an_install_over_the_admin_api_completes_the_update(simulator: RunningSimulator) -> None:
    # Given a token
    token = get_token(simulator)

    # When the hallway sensor's update is marked installed
    response = admin(simulator, "install", {"device_id": HALLWAY})

    # Then it reports the new version installed and status 3
    zigbee = firmware(simulator, token, HALLWAY)["result"][0]
    assert response.json() == {"updated": 1}
    assert (zigbee["current_version"], zigbee["upgrade_status"]) == ("1.0.9", 3)


def test_a_failure_over_the_admin_api_sets_the_status(simulator: RunningSimulator) -> None:
    # Given a token
    token = get_token(simulator)

    # When the hallway sensor's update is marked timed out (7)
    admin(simulator, "fail", {"device_id": HALLWAY, "channel": 3, "status": 7})

    # Then its status is 7
    assert firmware(simulator, token, HALLWAY)["result"][0]["upgrade_status"] == 7


def test_a_device_error_set_over_the_admin_api_is_answered(simulator: RunningSimulator) -> None:
    # Given a token
    token = get_token(simulator)

    # When the kitchen plug is made to answer 2010
    admin(simulator, "device-error", {"device_id": KITCHEN, "code": 2010})

    # Then its firmware read fails with 2010
    assert firmware(simulator, token, KITCHEN)["code"] == 2010


def test_the_admin_api_answers_404_for_an_unknown_device(simulator: RunningSimulator) -> None:
    # Given a running simulator
    # When an unknown device is marked installed
    response = admin(simulator, "install", {"device_id": "nope"})

    # Then it is a 404 naming the device
    assert response.status_code == 404
    assert "nope" in response.json()["error"]


def test_the_admin_api_answers_400_for_an_invalid_body(simulator: RunningSimulator) -> None:
    # Given a running simulator
    # When a release lacks its version
    response = admin(simulator, "releases", {"product_id": PLUG_PRODUCT, "channel": 0})

    # Then it is a 400 naming the missing field
    assert response.status_code == 400
    assert "version" in response.json()["error"]


def test_latency_set_over_the_admin_api_delays_answers(simulator: RunningSimulator) -> None:
    # Given 300 ms of latency set through the admin API
    admin(simulator, "faults", {"latency_s": 0.3})

    # When a call is timed
    started = time.perf_counter()
    httpx.get(f"{simulator.url}/v1.0/token")
    elapsed = time.perf_counter() - started

    # Then it took at least the latency
    assert elapsed >= 0.3


def test_an_http_status_fault_set_over_the_admin_api_is_served(simulator: RunningSimulator) -> None:
    # Given a 429 with Retry-After injected through the admin API
    admin(simulator, "faults", {"http_status": {"status": 429, "retry_after": 5}})

    # When a call is made
    response = httpx.get(f"{simulator.url}/v1.0/token")

    # Then it is a bare 429 carrying Retry-After
    assert response.status_code == 429
    assert response.headers["retry-after"] == "5"


def test_a_hang_fault_makes_a_client_read_time_out(simulator: RunningSimulator) -> None:
    # Given a 3 s hang on the next request
    admin(simulator, "faults", {"hang": {"seconds": 3}})

    # When a client with a 0.3 s read timeout calls
    # Then it times out
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{simulator.url}/v1.0/token", timeout=0.3)


def test_tokens_revoked_over_the_admin_api_are_refused(simulator: RunningSimulator) -> None:
    # Given a token, then a revocation through the admin API
    token = get_token(simulator)
    admin(simulator, "faults", {"revoke_tokens": True})

    # When the token is used
    answer = firmware(simulator, token, KITCHEN)

    # Then it is invalid
    assert answer["code"] == 1010


def test_a_rate_limit_set_over_the_admin_api_applies(simulator: RunningSimulator) -> None:
    # Given a token and a limit of 1 request per second set through the admin API
    token = get_token(simulator)
    state = admin(simulator, "faults", {"rate_limit_rps": 1, "rate_limit_code": 1199}).json()

    # When two calls follow each other at once
    codes = [firmware(simulator, token, KITCHEN).get("code") for _ in range(2)]

    # Then the second is limited with the chosen code
    assert (state["rate_limit_rps"], state["rate_limit_code"]) == (1, 1199)
    assert codes == [None, 1199]


def test_faults_can_be_cleared_over_the_admin_api(simulator: RunningSimulator) -> None:
    # Given pending faults
    admin(simulator, "faults", {"latency_s": 1, "error": {"code": 500, "count": 3}})

    # When they are cleared
    state = admin(simulator, "faults", {"clear": True}).json()

    # Then none is left
    assert (state["latency_s"], state["errors"]) == (0.0, [])


def test_stats_over_the_admin_api_count_calls_by_api(simulator: RunningSimulator) -> None:
    # Given a token and two firmware reads
    token = get_token(simulator)
    firmware(simulator, token, KITCHEN)
    firmware(simulator, token, HALLWAY)

    # When the stats are read
    stats = admin(simulator, "stats").json()

    # Then the grant and both reads are counted
    assert stats["grants"] == 1
    assert stats["by_api"]["GET /v2.0/cloud/thing/{device_id}/firmware"] == 2
    assert stats["by_code"]["success"] == 3


def test_stats_reset_over_the_admin_api(simulator: RunningSimulator) -> None:
    # Given some traffic
    get_token(simulator)

    # When the stats are reset
    after = admin(simulator, "stats/reset", {}).json()

    # Then they are zero
    assert (after["requests"], after["grants"]) == (0, 0)


def test_the_fleet_can_be_read_over_the_admin_api(simulator: RunningSimulator) -> None:
    # Given the demo simulator
    # When the fleet is read
    fleet = admin(simulator, "fleet").json()

    # Then it holds the twelve devices in the fleet-file format
    assert len(fleet["devices"]) == 12
    assert {"device_id", "channels"} <= set(fleet["devices"][0])


@pytest.mark.parametrize("simulator", [{"fleet": generate_fleet(7, seed=1)}], indirect=True)
def test_the_simulator_fixture_takes_a_fleet_by_indirect_parameter(
    simulator: RunningSimulator,
) -> None:
    # Given a simulator fixture parametrised with a 7-device fleet
    # When its fleet is read
    fleet = admin(simulator, "fleet").json()

    # Then it is that fleet
    assert len(fleet["devices"]) == 7


async def test_a_token_revoked_half_way_through_200_concurrent_calls_splits_them(
    make_simulator: MakeSimulator,
) -> None:
    # Given 200 devices, 20 ms latency, and revocation after 100 business calls
    sim = make_simulator(fleet=generate_fleet(200, offline_ratio=0.0))
    token = get_token(sim)
    sim.cloud.faults.set_latency(0.02)
    sim.cloud.revoke_tokens_after(100)
    ids = [d.device_id for d in sim.cloud.fleet.devices]

    # When 200 firmware reads are in flight at once
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=200)) as client:

        async def read(device_id: str) -> Any:
            path = f"/v2.0/cloud/thing/{device_id}/firmware"
            response = await client.get(sim.url + path, headers=signed(sim, path, token=token))
            return response.json().get("code")

        codes = await asyncio.gather(*(read(i) for i in ids))

    # Then exactly 100 succeed and the other 100 find the token dead
    assert codes.count(None) == 100
    assert codes.count(1010) == 100


async def test_many_slow_requests_are_served_concurrently(make_simulator: MakeSimulator) -> None:
    # Given 0.5 s of latency on every answer
    sim = make_simulator()
    sim.cloud.faults.set_latency(0.5)

    # When 1,000 requests are sent at once (aiohttp: httpx's pool is the slower party here)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one() -> int:
            async with session.get(f"{sim.url}/v1.0/token") as response:
                await response.read()
                return response.status

        statuses = await asyncio.gather(*(one() for _ in range(1000)))
    elapsed = time.perf_counter() - started

    # Then they all come back in a fraction of the 500 s a serial server would need
    assert statuses == [200] * 1000
    assert elapsed < 8


def test_running_simulator_stops_listening_when_the_block_ends() -> None:
    # Given a simulator run for the length of a with-block
    with running_simulator(SimulatedCloud(demo_fleet())) as sim:
        url = sim.url
        assert httpx.get(f"{url}/_sim/stats").status_code == 200

    # When the block has ended
    # Then nothing answers on its port any more
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_sim/stats")


def test_the_admin_api_sets_up_a_bad_day(simulator: RunningSimulator) -> None:
    # Given a bad day asked for over the admin API
    answer = admin(
        simulator,
        "faults",
        {
            "error": {"code": 1199, "count": None, "every": 2, "for_s": 60, "calls": "any"},
            "http_status": {"status": 502, "count": None, "every": 5, "for_s": 60},
            "drip": {"interval_s": 0.01, "path_contains": "nowhere"},
            "bomb": {"inflated_bytes": 2**20, "path_contains": "nowhere"},
            "revoke_tokens_every": 13,
            "listing_fields": "snake_case",
        },
    )
    # Then it is in force, and reported back
    state = answer.json()
    assert answer.status_code == 200
    assert state["errors"][0]["every"] == 2
    assert state["http_statuses"][0]["every"] == 5
    assert (len(state["drips"]), len(state["bombs"])) == (1, 1)
    assert state["listing_fields"] == "snake_case"
    token = get_token(simulator)  # the first call the 1199 counts: not hit
    codes = [firmware(simulator, token, KITCHEN).get("code") for _ in range(3)]
    assert codes == [1199, None, 1199]  # every second call, token calls included


def test_a_slow_drip_answer_arrives_a_byte_at_a_time(simulator: RunningSimulator) -> None:
    # Given the next firmware answer sent a byte every 5 ms
    token = get_token(simulator)
    simulator.cloud.faults.inject_drip(0.005, path_contains="firmware")
    path = f"/v2.0/cloud/thing/{KITCHEN}/firmware"
    # When it is read as a stream
    with httpx.stream(
        "GET", simulator.url + path, headers=signed(simulator, path, token=token)
    ) as r:
        chunks = list(r.iter_raw())
    # Then it came in many small pieces, and whole
    assert len(chunks) > 20
    assert httpx.Response(200, content=b"".join(chunks)).json()["success"] is True
