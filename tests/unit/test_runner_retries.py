"""The local driver's retries, over a scripted fake client and an in-memory SQLite state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from fwwatch.cycle import DeviceRetryPolicy
from fwwatch.events import EventGroup
from fwwatch.local.runner import run_cycle
from fwwatch.local.store_sqlite import SqliteStore
from fwwatch.tuya import (
    ClientStats,
    DeviceFirmware,
    DeviceSummary,
    TuyaFatalError,
    TuyaTransientError,
    parse_firmware,
)

OnCall = Callable[[str, int], None]


class ScriptedClient:
    """Each device's answers, call by call: ``ok``, ``offer`` (1.1 on offer), ``busy`` or
    ``fatal``; the last one repeats."""

    def __init__(self, script: dict[str, list[str]], on_call: OnCall | None = None) -> None:
        self.script = script
        self.calls = dict.fromkeys(script, 0)
        self.stats = ClientStats()
        self.on_call = on_call

    async def get_firmware(self, device_id: str) -> DeviceFirmware:
        self.stats.requests += 1
        call = self.calls[device_id]
        self.calls[device_id] += 1
        if self.on_call is not None:
            self.on_call(device_id, call)
        await asyncio.sleep(0)
        answer = self.script[device_id][min(call, len(self.script[device_id]) - 1)]
        if answer == "busy":
            raise TuyaTransientError("HTTP 503; gave up after 8 attempts")
        if answer == "fatal":
            raise TuyaFatalError("[1004] sign invalid: check TUYA_ACCESS_SECRET", code=1004)
        target = "1.1" if answer == "offer" else "1.0"
        channel = {"type": 0, "current_version": "1.0", "version": target, "upgrade_status": 0}
        return parse_firmware(device_id, [channel])

    async def list_devices(self) -> AsyncIterator[DeviceSummary]:
        for device_id in self.script:
            yield DeviceSummary(device_id=device_id, name=device_id)


class Told:
    name = "told"

    def __init__(self) -> None:
        self.groups: list[EventGroup] = []

    async def send(self, group: EventGroup) -> None:
        self.groups.append(group)

    async def send_test(self) -> None:
        return None


QUICK = DeviceRetryPolicy(max_attempts=3, delay_s=0.01)


async def test_a_device_failing_twice_is_checked_on_its_third_check() -> None:
    client = ScriptedClient({"a": ["ok"], "b": ["busy", "busy", "ok"]})
    with SqliteStore(":memory:") as store:
        report = await run_cycle(client, store, [], retry=QUICK)
        assert store.last_checks()["b"][1] is True
    assert (report.devices, report.checked, report.failed) == (2, 2, [])
    assert client.calls == {"a": 1, "b": 3}


async def test_a_device_failing_on_every_check_is_reported_after_the_last() -> None:
    client = ScriptedClient({"a": ["busy"]})
    with SqliteStore(":memory:") as store:
        report = await run_cycle(client, store, [], retry=QUICK)
        recorded = store.last_checks()["a"]
    assert [r.device_id for r in report.not_checked] == ["a"]
    assert client.calls == {"a": 3}
    assert recorded[1] is False
    assert recorded[2] is not None
    assert "503" in recorded[2]["msg"]


async def test_stop_ends_a_retry_pass_after_the_batch_under_way() -> None:
    # Given five devices to check again, one a batch, and a stop during the first retry batch
    stop = asyncio.Event()
    after_stop: list[str] = []

    def on_call(device_id: str, call: int) -> None:
        if stop.is_set():
            after_stop.append(device_id)
        if call == 1 and device_id == "d0":
            stop.set()

    client = ScriptedClient({f"d{i}": ["busy", "ok"] for i in range(5)}, on_call)
    with SqliteStore(":memory:") as store:
        report = await run_cycle(client, store, [], retry=QUICK, batch_size=1, stop=stop)
        recorded = store.last_checks()
    # Then no other batch starts, the run says it was interrupted, and the devices it did
    # not check again are reported and recorded with their last error
    assert after_stop == []
    assert report.interrupted
    assert [r.device_id for r in report.not_checked] == ["d1", "d2", "d3", "d4"]
    assert {d: ok for d, (_, ok, _) in recorded.items()} == {
        "d0": True, "d1": False, "d2": False, "d3": False, "d4": False
    }  # fmt: skip


async def test_a_stop_during_the_wait_ends_the_run_at_once() -> None:
    stop = asyncio.Event()
    client = ScriptedClient({"a": ["ok"], "b": ["busy", "ok"]}, lambda d, _: stop.set())
    with SqliteStore(":memory:") as store:
        report = await run_cycle(client, store, [], retry=DeviceRetryPolicy(delay_s=600), stop=stop)
    assert report.interrupted
    assert client.calls == {"a": 1, "b": 1}


async def test_a_fatal_answer_while_retrying_still_delivers_what_the_run_stored() -> None:
    # Given a release found in the first pass, and the account lapsing before the retry
    told = Told()
    with SqliteStore(":memory:") as store:
        await run_cycle(ScriptedClient({"a": ["ok"], "b": ["ok"]}), store, [told], retry=QUICK)
        client = ScriptedClient({"a": ["offer"], "b": ["busy", "fatal"]})
        # When the retry meets the fatal answer
        with pytest.raises(TuyaFatalError):
            await run_cycle(client, store, [told], retry=QUICK)
        # Then the news of the first pass went out all the same, and is not pending
        assert [g.version for g in told.groups] == ["1.1"]
        assert store.pending("told") == []
