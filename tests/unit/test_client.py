"""The client's decisions (retry, renew, give up) against a scripted in-process transport.

The transport is httpx's MockTransport: the real client code runs, no socket is opened.
Behaviour over real HTTP against the simulator is in tests/integration.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import httpx
import pytest

from fwwatch.tuya import (
    InvalidDeviceIdError,
    RetryPolicy,
    TuyaClient,
    TuyaDeviceError,
    TuyaFatalError,
    TuyaResponseError,
    TuyaSettings,
    TuyaTransientError,
)
from tests.unit.scripted_cloud import SECRET, ScriptedCloud, envelope, make_client

FIRMWARE = [{"type": 0, "current_version": "1.0.0", "version": "1.1.0", "upgrade_status": 1}]


async def test_get_firmware_takes_a_token_once_and_returns_channels() -> None:
    cloud = ScriptedCloud(envelope(FIRMWARE))
    async with make_client(cloud) as tuya:
        first = await tuya.get_firmware("dev1")
        await tuya.get_firmware("dev2")
    assert first.channels[0].update_available
    assert cloud.grants == 1
    assert cloud.business[0].headers["access_token"] == "at-1"


async def test_invalid_device_id_sends_nothing() -> None:
    cloud = ScriptedCloud(envelope(FIRMWARE))
    async with make_client(cloud) as tuya:
        with pytest.raises(InvalidDeviceIdError):
            await tuya.get_firmware("../v1.0/token")
    assert cloud.grants == 0
    assert cloud.business == []


@pytest.mark.parametrize("code", [1010, 1011, 1012, 1400])
async def test_token_errors_take_a_new_grant_and_retry(code: int) -> None:
    cloud = ScriptedCloud(envelope(code=code), envelope(FIRMWARE))
    async with make_client(cloud) as tuya:
        firmware = await tuya.get_firmware("dev1")
    assert firmware.channels
    assert cloud.grants == 2
    assert [r.headers["access_token"] for r in cloud.business] == ["at-1", "at-2"]


async def test_a_token_rejected_every_time_is_transient_after_the_calls_budget() -> None:
    # Given a cloud that rejects every token it grants
    cloud = ScriptedCloud(envelope(code=1010))
    async with make_client(cloud, retry=RetryPolicy(attempts=4, base_s=0.001)) as tuya:
        # When a device is checked, then it is not checked, for a reason that may clear
        with pytest.raises(TuyaTransientError, match="access token rejected") as caught:
            await tuya.get_firmware("dev1")
    assert caught.value.code == 1010
    assert cloud.grants == 4  # one per try: bounded by the call's attempts


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (1004, "TUYA_ACCESS_SECRET"),
        (1001, "TUYA_ACCESS_SECRET"),
        (1005, "TUYA_ACCESS_ID"),
        (2007, "TUYA_ENDPOINT=https://openapi.tuyaeu.com"),
        (2406, "data centre"),
        (28841107, "data centre"),
        (28841002, "subscription"),
        (28841004, "quota"),
        (28841105, "not authorised"),
    ],
)
async def test_fatal_errors_raise_at_once_with_the_fix(code: int, words: str) -> None:
    cloud = ScriptedCloud(envelope(code=code, msg="tuya says no"))
    async with make_client(cloud) as tuya:
        with pytest.raises(TuyaFatalError) as caught:
            await tuya.get_firmware("dev1")
    assert len(cloud.business) == 1
    assert caught.value.code == code
    assert caught.value.tid == "tid-1"
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("code", "permanent"), [(1106, True), (2001, False), (2009, True), (2010, True)]
)
async def test_device_errors_concern_that_device_only(code: int, permanent: bool) -> None:
    cloud = ScriptedCloud(envelope(code=code))
    async with make_client(cloud) as tuya:
        with pytest.raises(TuyaDeviceError) as caught:
            await tuya.get_firmware("dev7")
    assert caught.value.device_id == "dev7"
    assert caught.value.permanent is permanent
    assert len(cloud.business) == 1


@pytest.mark.parametrize(
    "first",
    [
        envelope(code=1110),
        envelope(code=1111),
        envelope(code=1199),
        envelope(code=500),
        httpx.Response(429),
        httpx.Response(502, text="bad gateway"),
        httpx.Response(200, text="<html>oops"),
        httpx.Response(200, json={"no": "envelope"}),
    ],
)
async def test_transient_answers_are_retried(first: httpx.Response | dict[str, Any]) -> None:
    cloud = ScriptedCloud(first, envelope(FIRMWARE))
    async with make_client(cloud) as tuya:
        firmware = await tuya.get_firmware("dev1")
    assert firmware.channels
    assert len(cloud.business) == 2


async def test_throttling_lowers_the_request_rate() -> None:
    cloud = ScriptedCloud(envelope(code=1110), envelope(FIRMWARE))
    async with make_client(cloud) as tuya:
        await tuya.get_firmware("dev1")
        assert tuya.limiter.rate < tuya.limiter.ceiling


async def test_transient_errors_give_up_after_a_bounded_number_of_attempts() -> None:
    cloud = ScriptedCloud(httpx.Response(503))
    async with make_client(cloud, retry=RetryPolicy(attempts=4, base_s=0.001)) as tuya:
        with pytest.raises(TuyaTransientError, match="HTTP 503"):
            await tuya.get_firmware("dev1")
    assert len(cloud.business) == 4


async def test_timeouts_are_retried_then_reported() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    cloud = ScriptedCloud(hang)
    async with make_client(cloud, retry=RetryPolicy(attempts=3, base_s=0.001)) as tuya:
        with pytest.raises(TuyaTransientError, match="timed out"):
            await tuya.get_firmware("dev1")
    assert len(cloud.business) == 3


async def test_retry_after_is_honoured() -> None:
    cloud = ScriptedCloud(httpx.Response(429, headers={"Retry-After": "0.3"}), envelope(FIRMWARE))
    async with make_client(cloud) as tuya:
        started = time.monotonic()
        await tuya.get_firmware("dev1")
        waited = time.monotonic() - started
    assert waited >= 0.3


async def test_clock_offset_is_learnt_from_1013_and_kept() -> None:
    skew_ms = 7 * 60 * 1000

    def strict_clock(request: httpx.Request) -> dict[str, Any]:
        server_now = int(time.time() * 1000) + skew_ms
        if abs(int(request.headers["t"]) - server_now) > 5 * 60 * 1000:
            return envelope(code=1013, msg="request time is invalid", t=server_now)
        return envelope(FIRMWARE, t=server_now)

    cloud = ScriptedCloud(strict_clock)
    async with make_client(cloud) as tuya:
        await tuya.get_firmware("dev1")
        await tuya.get_firmware("dev2")
        assert abs(tuya.clock_offset_ms - skew_ms) < 2000
    assert len(cloud.business) == 3  # one rejection, then two accepted


async def test_1013_without_server_time_is_fatal() -> None:
    body = {"success": False, "code": 1013, "msg": "request time is invalid", "tid": "x"}
    cloud = ScriptedCloud(body)
    async with make_client(cloud) as tuya:
        with pytest.raises(TuyaFatalError, match="clock"):
            await tuya.get_firmware("dev1")


async def test_error_code_fields_of_v2_pages_are_read() -> None:
    body = {"success": False, "error_code": "2010", "error_msg": "device not exist", "tid": "x"}
    cloud = ScriptedCloud(body)
    async with make_client(cloud) as tuya:
        with pytest.raises(TuyaDeviceError) as caught:
            await tuya.get_firmware("dev1")
    assert caught.value.code == 2010


async def test_token_is_refreshed_ahead_of_expiry() -> None:
    now = [1_000_000.0]
    cloud = ScriptedCloud(envelope(FIRMWARE))
    async with make_client(cloud, clock=lambda: now[0]) as tuya:
        await tuya.get_firmware("dev1")
        now[0] += 7200 - 60  # within the refresh margin
        await tuya.get_firmware("dev2")
    assert (cloud.grants, cloud.refreshes) == (1, 1)
    assert cloud.business[1].headers["access_token"] == "rt-1"


@pytest.mark.parametrize(
    ("code", "msg"), [(1012, "token status invalid"), (1106, "permission deny")]
)
async def test_a_failed_refresh_falls_back_to_a_new_grant(code: int, msg: str) -> None:
    # (1106 is fatal on the grant itself only: a refused refresh is one more reason to grant)
    now = [1_000_000.0]

    class RefusingRefresh(ScriptedCloud):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.startswith("/v1.0/token/"):
                self.refreshes += 1
                return httpx.Response(200, json=envelope(code=code, msg=msg))
            return super().__call__(request)

    cloud = RefusingRefresh(envelope(FIRMWARE))
    async with make_client(cloud, clock=lambda: now[0]) as tuya:
        await tuya.get_firmware("dev1")
        now[0] += 7200
        await tuya.get_firmware("dev2")
    assert (cloud.grants, cloud.refreshes) == (2, 1)


async def test_secrets_stay_out_of_errors_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    now = [1_000_000.0]
    cloud = ScriptedCloud(envelope(code=1010), httpx.Response(503), envelope(code=1004))
    async with make_client(cloud, clock=lambda: now[0]) as tuya:
        with pytest.raises(TuyaFatalError) as caught:
            await tuya.get_firmware("dev1")
        now[0] += 7200  # forces a refresh: its URL holds the refresh token
        with pytest.raises(TuyaFatalError):
            await tuya.get_firmware("dev1")
        shown = " ".join([str(caught.value), repr(caught.value), repr(tuya), caplog.text])
    for secret in (SECRET, "at-1", "at-2", "refresh-at-1", "refresh-at-2"):
        assert secret not in shown


async def test_list_devices_follows_the_thing_cursor_to_the_end() -> None:
    ids = [f"dev{i:03d}" for i in range(45)]

    def page(request: httpx.Request) -> dict[str, Any]:
        size = int(request.url.params["page_size"])
        after = request.url.params.get("last_id")
        start = ids.index(after) + 1 if after else 0
        return envelope([{"id": d, "customName": d.upper()} for d in ids[start : start + size]])

    cloud = ScriptedCloud(page)
    async with make_client(cloud) as tuya:
        found = [d.device_id async for d in tuya.list_devices()]
    assert found == ids
    assert len(cloud.business) == 3


async def test_a_listing_stopped_between_pages_resumes_from_the_next_pages_cursor() -> None:
    ids = [f"dev{i:03d}" for i in range(45)]

    def page(request: httpx.Request) -> dict[str, Any]:
        after = request.url.params.get("last_id")
        start = ids.index(after) + 1 if after else 0
        return envelope([{"id": d} for d in ids[start : start + 20]])

    cloud = ScriptedCloud(page)
    async with make_client(cloud) as tuya:
        # Given the first page, and its cursor
        first = await anext(aiter(tuya.list_device_pages()))
        # When the listing is resumed from that cursor (in another client, even)
        rest = [p async for p in tuya.list_device_pages(first.next_cursor)]
    # Then it gives the pages after it, the last without a cursor
    assert [d.device_id for d in first.devices] == ids[:20]
    assert [[d.device_id for d in p.devices] for p in rest] == [ids[20:40], ids[40:]]
    assert [p.next_cursor for p in (first, *rest)] == ["dev019", "dev039", None]


async def test_a_listing_ending_on_a_full_page_ends_with_an_empty_page() -> None:
    ids = [f"dev{i:03d}" for i in range(40)]

    def page(request: httpx.Request) -> dict[str, Any]:
        after = request.url.params.get("last_id")
        start = ids.index(after) + 1 if after else 0
        return envelope([{"id": d} for d in ids[start : start + 20]])

    async with make_client(ScriptedCloud(page)) as tuya:
        pages = [p async for p in tuya.list_device_pages()]
    # A full page may be the last: only the next (empty) answer says so
    assert [(len(p.devices), p.next_cursor) for p in pages] == [
        (20, "dev019"),
        (20, "dev039"),
        (0, None),
    ]


async def test_an_iot03_listing_resumes_from_a_row_key() -> None:
    pages = {
        None: {"has_more": True, "last_row_key": "k1", "list": [{"id": "a"}, {"id": "b"}]},
        "k1": {"has_more": True, "last_row_key": "k2", "list": [{"id": "c"}]},
        "k2": {"has_more": False, "last_row_key": "k3", "list": [{"id": "d"}]},
    }

    def page(request: httpx.Request) -> dict[str, Any]:
        return envelope(pages[request.url.params.get("last_row_key")])

    settings = TuyaSettings(
        access_id="unit-id",
        access_secret=SECRET,
        endpoint="https://openapi.tuyaeu.com",
        device_listing="iot-03",
    )
    async with TuyaClient(settings, transport=httpx.MockTransport(ScriptedCloud(page))) as tuya:
        rest = [p async for p in tuya.list_device_pages("k1")]
    assert [([d.device_id for d in p.devices], p.next_cursor) for p in rest] == [
        (["c"], "k2"),
        (["d"], None),
    ]


async def test_list_devices_follows_iot03_row_keys() -> None:
    pages = {
        None: {
            "has_more": True,
            "last_row_key": "k1",
            "total": 3,
            "list": [{"id": "a"}, {"id": "b"}],
        },
        "k1": {"has_more": False, "last_row_key": "k2", "total": 3, "list": [{"id": "c"}]},
    }

    def page(request: httpx.Request) -> dict[str, Any]:
        return envelope(pages[request.url.params.get("last_row_key")])

    cloud = ScriptedCloud(page)
    settings = TuyaSettings(
        access_id="unit-id",
        access_secret=SECRET,
        endpoint="https://openapi.tuyaeu.com",
        device_listing="iot-03",
    )
    async with TuyaClient(settings, transport=httpx.MockTransport(cloud)) as tuya:
        found = [d.device_id async for d in tuya.list_devices()]
    assert found == ["a", "b", "c"]


async def test_unreadable_firmware_is_a_response_error_with_tid() -> None:
    cloud = ScriptedCloud(envelope("not a list"))
    async with make_client(cloud) as tuya:
        with pytest.raises(TuyaResponseError) as caught:
            await tuya.get_firmware("dev1")
    assert caught.value.tid == "tid-1"
    assert json.dumps(caught.value.as_dict())


async def test_a_request_backing_off_holds_no_connection() -> None:
    # Given one connection, and a device whose first attempt times out
    def slow_device_times_out(request: httpx.Request) -> httpx.Response | dict[str, Any]:
        if "dev-slow" in request.url.path:
            raise httpx.ReadTimeout("slow", request=request)
        return envelope(FIRMWARE)

    cloud = ScriptedCloud(slow_device_times_out)
    settings = TuyaSettings(
        access_id="unit-id",
        access_secret=SECRET,
        endpoint="https://openapi.tuyaeu.com",
        qps=1000,
        max_connections=1,
    )
    async with TuyaClient(
        settings,
        transport=httpx.MockTransport(cloud),
        retry=RetryPolicy(base_s=60.0, cap_s=60.0, budget_s=600),
        rng=lambda low, high: high,
    ) as tuya:
        slow = asyncio.create_task(tuya.get_firmware("dev-slow"))
        await asyncio.sleep(0.05)
        # When another device is checked while the first waits out a minute's backoff
        other = await asyncio.wait_for(tuya.get_firmware("dev-other"), timeout=5)
        slow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await slow
    # Then it went through at once: the waiting retry held no connection
    assert other.channels
    assert [request.url.path.split("/")[4] for request in cloud.business] == [
        "dev-slow",
        "dev-other",
    ]
