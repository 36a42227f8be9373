"""Checking many devices: order kept, concurrency bounded, failures kept per device."""

from __future__ import annotations

import asyncio

import pytest

from fwwatch.check import check_devices
from fwwatch.tuya import DeviceFirmware, TuyaDeviceError, TuyaFatalError, parse_firmware


class FakeFirmwareSource:
    """Answers from a table; records how many calls ran at once."""

    def __init__(self, failures: dict[str, Exception] | None = None) -> None:
        self.failures = failures or {}
        self.in_flight = 0
        self.most_in_flight = 0
        self.calls: list[str] = []

    async def get_firmware(self, device_id: str) -> DeviceFirmware:
        self.calls.append(device_id)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.001 * (hash(device_id) % 5))
            if device_id in self.failures:
                raise self.failures[device_id]
            return parse_firmware(device_id, [{"type": 0, "current_version": "1", "version": "2"}])
        finally:
            self.in_flight -= 1


async def test_results_come_back_in_the_order_given() -> None:
    ids = [f"d{i}" for i in range(50)]
    results = await check_devices(FakeFirmwareSource(), ids, concurrency=7)
    assert [r.device_id for r in results] == ids


async def test_concurrency_is_bounded() -> None:
    source = FakeFirmwareSource()
    await check_devices(source, [f"d{i}" for i in range(100)], concurrency=5)
    assert source.most_in_flight == 5


async def test_a_device_error_is_kept_with_its_device() -> None:
    source = FakeFirmwareSource({"d2": TuyaDeviceError("offline", code=2001, permanent=False)})
    results = await check_devices(source, ["d1", "d2", "d3"])
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].as_dict()["error"] == {"code": 2001, "msg": "offline", "tid": None}


async def test_a_fatal_error_stops_the_check_and_is_raised_as_itself() -> None:
    source = FakeFirmwareSource({"d3": TuyaFatalError("sign invalid", code=1004)})
    with pytest.raises(TuyaFatalError):
        await check_devices(source, [f"d{i}" for i in range(200)], concurrency=4)
    assert len(source.calls) < 20


async def test_progress_is_reported_per_device() -> None:
    seen: list[str] = []
    await check_devices(
        FakeFirmwareSource(), ["a", "b", "c"], on_result=lambda r: seen.append(r.device_id)
    )
    assert sorted(seen) == ["a", "b", "c"]


async def test_no_devices_is_no_work() -> None:
    assert await check_devices(FakeFirmwareSource(), []) == []
