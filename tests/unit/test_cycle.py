"""The core cycle over in-memory fakes: settling devices, the retry rule, news told once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from fwwatch.cycle import DeviceRetryPolicy, SettledBatch, Settlement, check_batch, discover
from fwwatch.messages import CheckMessage
from fwwatch.state import DEVICE_LEVEL_CHANNEL, ChannelKey, ChannelState
from fwwatch.tuya import (
    DeviceFirmware,
    DeviceSummary,
    InvalidDeviceIdError,
    TuyaDeviceError,
    TuyaTransientError,
    parse_firmware,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)


class MemoryStore:
    """A keyed store in a dict, counting reads and writes as DynamoDB would bill them."""

    def __init__(self) -> None:
        self.items: dict[ChannelKey, ChannelState] = {}
        self.reads: list[int] = []
        self.writes = 0

    def get_items(self, keys: Iterable[ChannelKey]) -> dict[ChannelKey, ChannelState]:
        keys = list(keys)
        self.reads.append(len(keys))
        return {key: self.items[key] for key in keys if key in self.items}

    def put_items(self, states: Sequence[ChannelState]) -> None:
        self.writes += len(states)
        self.items.update({state.key: state for state in states})


class Cloud:
    """Firmware by device, or an error to raise."""

    def __init__(self, versions: dict[str, tuple[str, str | None]]) -> None:
        self.versions = versions
        self.errors: dict[str, Exception] = {}

    async def get_firmware(self, device_id: str) -> DeviceFirmware:
        if device_id in self.errors:
            raise self.errors[device_id]
        current, target = self.versions[device_id]
        status = 1 if target and target != current else 0
        return parse_firmware(
            device_id,
            [
                {
                    "type": 0,
                    "current_version": current,
                    "version": target or current,
                    "upgrade_status": status,
                }
            ],
        )


async def check(
    cloud: Cloud,
    store: MemoryStore,
    *ids: str,
    attempt: int = 1,
    now: datetime = T0,
    policy: DeviceRetryPolicy | None = None,
) -> SettledBatch:
    """One batch checked and settled, and its changes written (as the checker does)."""
    batch = await check_batch(cloud, ids, store, attempt=attempt, now=now, policy=policy)
    store.put_items(batch.states)
    return batch


def test_check_messages_cut_devices_into_messages() -> None:
    ids = [f"d{i}" for i in range(250)]
    planned = CheckMessage.plan("r", ids, per_message=100)
    assert [len(m.device_ids) for m in planned] == [100, 100, 50]
    assert [d for m in planned for d in m.device_ids] == ids


def test_a_message_with_a_hostile_device_id_is_refused() -> None:
    with pytest.raises((InvalidDeviceIdError, ValidationError)):
        CheckMessage.model_validate_json('{"run_id": "r", "device_ids": ["../v1.0/token"]}')


async def test_the_first_check_writes_every_item_and_an_unchanged_one_writes_nothing() -> None:
    cloud = Cloud({"a": ("1.0", None), "b": ("1.0", None)})
    store = MemoryStore()
    first = await check(cloud, store, "a", "b")
    assert len(first.states) == 4  # two channels and two device items
    store.reads.clear()
    second = await check(cloud, store, "a", "b", now=T0 + timedelta(days=1))
    assert (len(second.states), store.writes) == (0, 4)
    assert store.reads == [2]  # only the device items were read


async def test_a_changed_device_reads_and_writes_only_itself() -> None:
    cloud = Cloud({"a": ("1.0", None), "b": ("1.0", None)})
    store = MemoryStore()
    await check(cloud, store, "a", "b")
    cloud.versions["b"] = ("1.0", "1.1")
    store.reads.clear()
    batch = await check(cloud, store, "a", "b")
    assert len(batch.states) == 2
    assert store.reads == [2, 1]
    assert store.items[("b", 0)].target_version == "1.1"


async def test_transient_failures_are_retried_then_given_up() -> None:
    cloud = Cloud({"a": ("1.0", None), "b": ("1.0", None)})
    cloud.errors["b"] = TuyaTransientError("HTTP 503; gave up after 6 attempts")
    store = MemoryStore()
    policy = DeviceRetryPolicy(max_attempts=3)
    early = await check(cloud, store, "a", "b", policy=policy)
    assert (early.retry_ids, early.having(Settlement.GAVE_UP)) == (["b"], [])
    assert ("b", DEVICE_LEVEL_CHANNEL) not in store.items  # a retry is not recorded
    last = await check(cloud, store, "b", attempt=3, policy=policy)
    assert (last.retry_ids, [r.device_id for r in last.having(Settlement.GAVE_UP)]) == ([], ["b"])
    assert store.items[("b", DEVICE_LEVEL_CHANNEL)].last_error is not None


async def test_device_errors_are_recorded_not_retried() -> None:
    cloud = Cloud({"a": ("1.0", None)})
    cloud.errors["a"] = TuyaDeviceError("device not exist", code=2010, permanent=True)
    store = MemoryStore()
    batch = await check(cloud, store, "a")
    again = await check(cloud, store, "a")
    assert batch.retry_ids == []
    assert [r.device_id for r in batch.having(Settlement.DEVICE_ERROR)] == ["a"]
    error = store.items[("a", DEVICE_LEVEL_CHANNEL)].last_error
    assert error is not None
    assert error.code == 2010
    assert again.states == []


@pytest.mark.parametrize(
    ("attempt", "retry_after_s", "expected"),
    [(2, None, 30.0), (3, None, 60.0), (4, None, 120.0), (2, 45.0, 45.0), (9, None, 900.0)],
)
def test_the_wait_before_a_retry_doubles_honours_the_cloud_and_is_capped(
    attempt: int, retry_after_s: float | None, expected: float
) -> None:
    policy = DeviceRetryPolicy(max_attempts=10, delay_s=30)
    assert policy.delay_before(attempt, retry_after_s=retry_after_s) == expected


async def test_discovery_skips_invalid_and_repeated_ids_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Lister:
        async def list_devices(self):  # type: ignore[no-untyped-def]
            for device_id in ("good1", "../v1.0/token", "good2", "good1"):
                yield DeviceSummary(device_id=device_id, name=device_id.upper())

    found = [(device_id, info.device_name) async for device_id, info in discover(Lister())]
    assert found == [("good1", "GOOD1"), ("good2", "GOOD2")]
    assert "skipped a listed device" in caplog.text
    assert "../v1.0/token" in caplog.text
