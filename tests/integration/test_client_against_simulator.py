"""The Tuya client over real HTTP against the simulator, one failure mode per test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp.web
import httpx
import pytest

from fwwatch.check import check_devices
from fwwatch.simulator import (
    DEFAULT_ACCESS_ID,
    DEFAULT_ACCESS_SECRET,
    Fleet,
    FleetChannel,
    FleetDevice,
    generate_fleet,
)
from fwwatch.tuya import (
    RetryPolicy,
    TuyaClient,
    TuyaDeviceError,
    TuyaFatalError,
    TuyaSettings,
    TuyaTransientError,
)

pytestmark = pytest.mark.integration

MakeSimulator = Callable[..., Any]


def client_for(simulator: Any, **settings: Any) -> TuyaClient:
    values: dict[str, Any] = {
        "access_id": DEFAULT_ACCESS_ID,
        "access_secret": DEFAULT_ACCESS_SECRET,
        "endpoint": simulator.url,
        "qps": 1000,
    }
    values.update(settings)
    timeout = values.pop("timeout_s", 5.0)
    return TuyaClient(TuyaSettings(**values, timeout_s=timeout), retry=RetryPolicy(base_s=0.01))


def fleet_of(*devices: FleetDevice) -> Fleet:
    return Fleet(devices=list(devices))


def plug(device_id: str, *, shape: str = "list", key: str = "type", **extra: Any) -> FleetDevice:
    return FleetDevice(
        device_id=device_id,
        name=f"Plug {device_id}",
        product_id="plugprod0001",
        product_name="Smart plug",
        category="cz",
        shape=shape,  # type: ignore[arg-type]
        channel_key=key,  # type: ignore[arg-type]
        channels=[
            FleetChannel(
                channel=0, current_version="1.0.0", target_version="1.1.0", upgrade_status=1
            )
        ],
        **extra,
    )


async def test_both_response_shapes_and_channel_keys_read_the_same(
    make_simulator: MakeSimulator,
) -> None:
    # Given devices answering as a list keyed `type` and as a single object keyed `channel`
    simulator = make_simulator(
        fleet=fleet_of(plug("devlist01"), plug("devobject1", shape="object", key="channel"))
    )
    # When both are checked
    async with client_for(simulator) as tuya:
        as_list = await tuya.get_firmware("devlist01")
        as_object = await tuya.get_firmware("devobject1")
    # Then both give the same typed channel
    assert as_list.channels == as_object.channels
    assert as_list.channels[0].target_version == "1.1.0"
    assert as_list.channels[0].update_available


async def test_token_revoked_mid_run_is_replaced_and_every_device_checked(
    make_simulator: MakeSimulator,
) -> None:
    fleet = generate_fleet(60, seed=1, offline_ratio=0)
    simulator = make_simulator(fleet=fleet)
    ids = [device.device_id for device in fleet.devices]
    async with client_for(simulator) as tuya:
        simulator.cloud.revoke_tokens_after(25)
        results = await check_devices(tuya, ids, concurrency=8)
        grants = tuya.stats.grants
    assert all(result.ok for result in results), [r.error for r in results if r.error]
    assert grants == 2


async def test_two_hundred_concurrent_calls_survive_a_revocation_with_one_new_grant(
    make_simulator: MakeSimulator,
) -> None:
    # Given a simulator that revokes the token half-way through 200 calls in flight at once
    fleet = generate_fleet(200, seed=2, offline_ratio=0)
    simulator = make_simulator(fleet=fleet)
    simulator.cloud.faults.set_latency(0.02)
    ids = [device.device_id for device in fleet.devices]
    async with client_for(simulator, max_connections=64) as tuya:
        await tuya.get_firmware(ids[0])  # the first grant
        simulator.cloud.revoke_tokens_after(100)
        # When all 200 run concurrently
        outcomes = await asyncio.gather(
            *(tuya.get_firmware(i) for i in ids), return_exceptions=True
        )
        grants = tuya.stats.grants
    # Then all succeed, with exactly one new grant
    assert [o for o in outcomes if isinstance(o, BaseException)] == []
    assert grants == 2


async def test_expired_refresh_token_falls_back_to_a_new_grant(
    make_simulator: MakeSimulator,
) -> None:
    now = [1_700_000_000.0]
    simulator = make_simulator(fleet=fleet_of(plug("dev1")), clock=lambda: now[0])
    async with TuyaClient(
        TuyaSettings(
            access_id=DEFAULT_ACCESS_ID, access_secret=DEFAULT_ACCESS_SECRET, endpoint=simulator.url
        ),  # type: ignore[arg-type]
        clock=lambda: now[0],
    ) as tuya:
        await tuya.get_firmware("dev1")
        # A grant by someone else kills both our access and our refresh token.
        simulator.cloud.revoke_tokens()
        now[0] += 7200  # our token is due for renewal: the refresh is refused
        firmware = await tuya.get_firmware("dev1")
        stats = tuya.stats
    assert firmware.channels
    assert (stats.grants, stats.refreshes) == (2, 0)


async def test_token_is_refreshed_before_it_expires(make_simulator: MakeSimulator) -> None:
    now = [1_700_000_000.0]
    simulator = make_simulator(fleet=fleet_of(plug("dev1")), clock=lambda: now[0])
    settings = TuyaSettings(
        access_id=DEFAULT_ACCESS_ID, access_secret=DEFAULT_ACCESS_SECRET, endpoint=simulator.url
    )  # type: ignore[arg-type]
    async with TuyaClient(settings, clock=lambda: now[0]) as tuya:
        await tuya.get_firmware("dev1")
        now[0] += 7000
        await tuya.get_firmware("dev1")
        assert (tuya.stats.grants, tuya.stats.refreshes) == (1, 1)
    assert simulator.cloud.stats.snapshot()["grants"] == 1


async def test_a_clock_seven_minutes_off_still_works(make_simulator: MakeSimulator) -> None:
    simulator = make_simulator(fleet=fleet_of(plug("dev1"), plug("dev2")))
    simulator.cloud.faults.clock_offset_s = 7 * 60
    async with client_for(simulator) as tuya:
        await tuya.get_firmware("dev1")
        await tuya.get_firmware("dev2")
        assert tuya.stats.clock_corrections == 1
        assert abs(tuya.clock_offset_ms - 420_000) < 5_000


async def test_rate_limit_bursts_are_absorbed_by_backoff(make_simulator: MakeSimulator) -> None:
    fleet = generate_fleet(60, seed=3, offline_ratio=0)
    simulator = make_simulator(fleet=fleet, rate_limit_rps=40)
    ids = [device.device_id for device in fleet.devices]
    async with client_for(simulator) as tuya:
        results = await check_devices(tuya, ids, concurrency=16)
        assert tuya.limiter.rate < 1000  # it slowed down
    assert all(result.ok for result in results)
    assert simulator.cloud.stats.snapshot()["rejected"] > 0


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_http_5xx_is_retried(make_simulator: MakeSimulator, status: int) -> None:
    simulator = make_simulator(fleet=fleet_of(plug("dev1")))
    simulator.cloud.faults.inject_http_status(status, count=2, path_contains="firmware")
    async with client_for(simulator) as tuya:
        firmware = await tuya.get_firmware("dev1")
        assert tuya.stats.retries[f"http_{status}"] == 2
    assert firmware.channels


async def test_error_codes_1110_and_1199_are_retried(make_simulator: MakeSimulator) -> None:
    simulator = make_simulator(fleet=fleet_of(plug("dev1")))
    simulator.cloud.faults.inject_error(1110, count=1, path_contains="firmware")
    simulator.cloud.faults.inject_error(1199, count=1, path_contains="firmware")
    async with client_for(simulator) as tuya:
        assert (await tuya.get_firmware("dev1")).channels


async def test_a_read_timeout_is_retried(make_simulator: MakeSimulator) -> None:
    simulator = make_simulator(fleet=fleet_of(plug("dev1")))
    simulator.cloud.faults.inject_hang(2.0, count=1, path_contains="firmware")
    async with client_for(simulator, timeout_s=0.5) as tuya:
        firmware = await tuya.get_firmware("dev1")
        assert tuya.stats.retries["timeout"] == 1
    assert firmware.channels


async def test_a_refused_connection_is_reported_after_bounded_retries() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = TuyaSettings(
        access_id="id", access_secret="secret", endpoint=f"http://127.0.0.1:{port}"
    )  # type: ignore[arg-type]
    async with TuyaClient(settings, retry=RetryPolicy(attempts=3, base_s=0.01)) as tuya:
        with pytest.raises(TuyaTransientError, match="cannot connect"):
            await tuya.get_firmware("dev1")
        assert tuya.stats.requests == 3


@pytest.mark.parametrize("kind", ["truncated", "not_json", "missing_result"])
async def test_malformed_answers_are_retried(make_simulator: MakeSimulator, kind: str) -> None:
    simulator = make_simulator(fleet=fleet_of(plug("dev1")))
    simulator.cloud.faults.inject_malformed(count=1, kind=kind, path_contains="firmware")
    async with client_for(simulator) as tuya:
        firmware = await tuya.get_firmware("dev1")
        assert tuya.stats.retries["malformed"] == 1
    assert firmware.channels


@pytest.mark.parametrize(("code", "permanent"), [(2001, False), (1106, True), (2010, True)])
async def test_device_errors_do_not_stop_other_devices(
    make_simulator: MakeSimulator, code: int, permanent: bool
) -> None:
    simulator = make_simulator(
        fleet=fleet_of(plug("good1"), plug("bad1", error=code), plug("good2"))
    )
    async with client_for(simulator) as tuya:
        results = await check_devices(tuya, ["good1", "bad1", "good2"])
    assert [r.ok for r in results] == [True, False, True]
    error = results[1].error
    assert isinstance(error, TuyaDeviceError)
    assert (error.code, error.permanent) == (code, permanent)
    assert error.tid


async def test_an_unknown_device_is_a_device_error(make_simulator: MakeSimulator) -> None:
    simulator = make_simulator(fleet=fleet_of(plug("dev1")))
    async with client_for(simulator) as tuya:
        with pytest.raises(TuyaDeviceError) as caught:
            await tuya.get_firmware("notmydevice")
    assert caught.value.code == 1106


async def test_a_wrong_secret_stops_at_once_without_a_retry_storm(
    make_simulator: MakeSimulator,
) -> None:
    fleet = generate_fleet(50, seed=4, offline_ratio=0)
    simulator = make_simulator(fleet=fleet)
    ids = [device.device_id for device in fleet.devices]
    async with client_for(simulator, access_secret="not-the-secret") as tuya:
        with pytest.raises(TuyaFatalError) as caught:
            await check_devices(tuya, ids)
        requests = tuya.stats.requests
    assert caught.value.code == 1004
    assert "TUYA_ACCESS_SECRET" in str(caught.value)
    assert requests == 1


async def test_a_lapsed_account_stops_the_run_with_a_plain_message(
    make_simulator: MakeSimulator,
) -> None:
    fleet = generate_fleet(30, seed=5, offline_ratio=0)
    simulator = make_simulator(fleet=fleet)
    simulator.cloud.faults.inject_error(28841004, count=100, path_contains="firmware")
    async with client_for(simulator) as tuya:
        with pytest.raises(TuyaFatalError, match="quota"):
            await check_devices(tuya, [d.device_id for d in fleet.devices], concurrency=4)
        assert tuya.stats.requests <= 1 + 4  # the grant, and the calls already in flight


@pytest.mark.parametrize(("listing", "count"), [("thing", 53), ("iot-03", 450)])
async def test_list_devices_pages_to_the_end(
    make_simulator: MakeSimulator, listing: str, count: int
) -> None:
    fleet = generate_fleet(count, seed=6)
    simulator = make_simulator(fleet=fleet)
    async with client_for(simulator, device_listing=listing) as tuya:
        found = [device async for device in tuya.list_devices()]
    assert sorted(d.device_id for d in found) == sorted(d.device_id for d in fleet.devices)
    assert all(d.product_id and d.name for d in found)


class ForwardProxy:
    """A plain-HTTP forward proxy: takes absolute-form requests, forwards them, answers."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.url = ""
        self._runner: aiohttp.web.AppRunner | None = None
        self._upstream = httpx.AsyncClient(trust_env=False)

    async def _forward(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        self.seen.append(f"{request.method} {request.url}")
        hop_by_hop = {"host", "connection", "proxy-connection", "keep-alive", "content-length"}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in hop_by_hop}
        answer = await self._upstream.request(
            request.method, str(request.url), headers=headers, content=await request.read()
        )
        return aiohttp.web.Response(
            status=answer.status_code,
            body=answer.content,
            content_type=answer.headers.get("content-type", "application/json").split(";")[0],
        )

    async def __aenter__(self) -> ForwardProxy:
        server = aiohttp.web.Server(self._forward)
        self._runner = aiohttp.web.ServerRunner(server)
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._upstream.aclose()
        if self._runner is not None:
            await self._runner.cleanup()


def without_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.mark.parametrize("no_proxy", [None, "127.0.0.1"], ids=["proxied", "no-proxy"])
async def test_a_proxy_from_the_environment_carries_every_call_unless_no_proxy_says(
    make_simulator: MakeSimulator, monkeypatch: pytest.MonkeyPatch, no_proxy: str | None
) -> None:
    # Given a forward proxy named by HTTP_PROXY, as behind a company firewall, and maybe
    # NO_PROXY naming the endpoint's host
    simulator = make_simulator(fleet=fleet_of(plug("devlist01")))
    without_proxy_variables(monkeypatch)
    async with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        if no_proxy:
            monkeypatch.setenv("NO_PROXY", no_proxy)
        # When a device is checked
        async with client_for(simulator) as tuya:
            firmware = await tuya.get_firmware("devlist01")
    # Then it worked, and the token grant and the firmware call both went through the
    # proxy, or both went direct
    assert firmware.channels[0].target_version == "1.1.0"
    through_proxy = [
        f"GET {simulator.url}/v1.0/token",
        f"GET {simulator.url}/v2.0/cloud/thing/devlist01/firmware",
    ]
    assert [line.split("?")[0] for line in proxy.seen] == ([] if no_proxy else through_proxy)
