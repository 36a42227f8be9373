"""The pipeline's steps over in-memory fakes: messages, checking, publishing news once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from fwwatch.events import EventGroup, EventType
from fwwatch.pipeline import (
    CheckMessage,
    check_message,
    news_from_changes,
    plan_messages,
    publish_news,
)
from fwwatch.state import DEVICE_LEVEL_CHANNEL, ChannelKey, ChannelState
from fwwatch.tuya import (
    DeviceFirmware,
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


def message(*ids: str, attempt: int = 1) -> CheckMessage:
    return CheckMessage(run_id="run1", device_ids=ids, attempt=attempt)


def test_plan_messages_cuts_devices_into_messages() -> None:
    ids = [f"d{i}" for i in range(250)]
    planned = plan_messages("r", ids, per_message=100)
    assert [len(m.device_ids) for m in planned] == [100, 100, 50]
    assert [d for m in planned for d in m.device_ids] == ids


def test_a_message_with_a_hostile_device_id_is_refused() -> None:
    with pytest.raises((InvalidDeviceIdError, ValidationError)):
        CheckMessage.model_validate_json('{"run_id": "r", "device_ids": ["../v1.0/token"]}')


async def test_the_first_check_writes_every_item_and_an_unchanged_one_writes_nothing() -> None:
    cloud = Cloud({"a": ("1.0", None), "b": ("1.0", None)})
    store = MemoryStore()
    first = await check_message(message("a", "b"), cloud, store, now=T0)
    assert first.written == 4  # two channels and two device items
    store.reads.clear()
    second = await check_message(message("a", "b"), cloud, store, now=T0 + timedelta(days=1))
    assert (second.written, store.writes) == (0, 4)
    assert store.reads == [2]  # only the device items were read


async def test_a_changed_device_reads_and_writes_only_itself() -> None:
    cloud = Cloud({"a": ("1.0", None), "b": ("1.0", None)})
    store = MemoryStore()
    await check_message(message("a", "b"), cloud, store, now=T0)
    cloud.versions["b"] = ("1.0", "1.1")
    store.reads.clear()
    outcome = await check_message(message("a", "b"), cloud, store, now=T0)
    assert outcome.written == 2
    assert store.reads == [2, 1]
    assert store.items[("b", 0)].target_version == "1.1"


async def test_transient_failures_are_retried_then_given_up() -> None:
    cloud = Cloud({"a": ("1.0", None), "b": ("1.0", None)})
    cloud.errors["b"] = TuyaTransientError("HTTP 503; gave up after 6 attempts")
    store = MemoryStore()
    early = await check_message(message("a", "b"), cloud, store, max_attempts=3)
    last = await check_message(message("b", attempt=3), cloud, store, max_attempts=3)
    assert (early.retry, early.gave_up) == (["b"], {})
    assert (last.retry, list(last.gave_up)) == ([], ["b"])
    assert store.items[("b", DEVICE_LEVEL_CHANNEL)].last_error is not None


async def test_device_errors_are_recorded_not_retried() -> None:
    cloud = Cloud({"a": ("1.0", None)})
    cloud.errors["a"] = TuyaDeviceError("device not exist", code=2010, permanent=True)
    store = MemoryStore()
    outcome = await check_message(message("a"), cloud, store)
    again = await check_message(message("a"), cloud, store)
    assert outcome.retry == []
    assert list(outcome.device_errors) == ["a"]
    error = store.items[("a", DEVICE_LEVEL_CHANNEL)].last_error
    assert error is not None
    assert error.code == 2010
    assert again.written == 0


def pair(
    device: str, old: tuple[str, str | None], new: tuple[str, str | None]
) -> tuple[ChannelState, ChannelState]:
    def state(versions: tuple[str, str | None]) -> ChannelState:
        current, target = versions
        return ChannelState(
            device_id=device,
            channel=0,
            channel_name="Main module",
            product_id="p1",
            current_version=current,
            target_version=target,
            upgrade_status=1 if target else 0,
            update_available=bool(target),
            first_seen=T0,
            last_changed=T0,
        )

    return state(old), state(new)


class Ledger:
    def __init__(self) -> None:
        self.keys: set[str] = set()

    def published(self, keys: Sequence[str]) -> set[str]:
        return self.keys & set(keys)

    def record(self, keys: Sequence[str]) -> None:
        self.keys.update(keys)


class Publisher:
    def __init__(self) -> None:
        self.groups: list[EventGroup] = []
        self.fail_next = 0

    def publish(self, group: EventGroup) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("SNS is down")
        self.groups.append(group)


def test_news_of_a_batch_is_published_once_even_when_replayed() -> None:
    changes = [pair(f"d{i}", ("1.0", None), ("1.0", "2.0")) for i in range(500)]
    events = news_from_changes(changes, notify_first_seen=False)
    ledger, publisher = Ledger(), Publisher()
    first = publish_news(events, ledger, publisher)
    replay = publish_news(events, ledger, publisher)
    assert [g.device_count for g in publisher.groups] == [500]
    assert (len(first.published), len(replay.published), replay.duplicates) == (1, 0, 500)


def test_a_failed_publish_is_retried_without_repeating_what_went_out() -> None:
    changes = [pair("a", ("1.0", None), ("1.0", "2.0")), pair("b", ("1.0", "2.0"), ("2.0", None))]
    events = news_from_changes(changes, notify_first_seen=False)
    ledger, publisher = Ledger(), Publisher()
    publisher.fail_next = 1
    first = publish_news(events, ledger, publisher)
    assert len(first.failed) == 1
    retry = publish_news(events, ledger, publisher)
    kinds = sorted(g.type for g in publisher.groups)
    assert kinds == [EventType.UPDATE_AVAILABLE, EventType.UPDATE_INSTALLED]
    assert retry.failed == []
