"""State is written in observation order: a slower, overlapping check never rewrites history.

Two checks of one device overlap (an SQS message redelivered while the first is still at
work, or two runs): the one that observed earlier finishes last. In both stores its write
is refused, so no false "installed" is told.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fwwatch.aws.store_dynamodb import DynamoStateStore
from fwwatch.cycle import check_batch
from fwwatch.local.store_sqlite import SqliteStore
from fwwatch.news import news_from_changes
from fwwatch.state import ChannelKey, ChannelState
from fwwatch.tuya import DeviceFirmware, parse_firmware

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def firmware(current: str, offered: str | None = None) -> DeviceFirmware:
    channel = {"type": 0, "current_version": current, "version": offered or current}
    channel["upgrade_status"] = 1 if offered else 0
    return parse_firmware("dev001", [channel])


class Device:
    """A firmware source whose device runs what it is told (each answer stamped on arrival)."""

    def __init__(self, answer: DeviceFirmware) -> None:
        self.answer = answer

    async def get_firmware(self, device_id: str) -> DeviceFirmware:
        return self.answer


class SqliteWrites:
    """The local store, written as the runner writes it (with the batch's news)."""

    def __init__(self, path: Path) -> None:
        self.store = SqliteStore(path)
        self.told: list[str] = []

    def get_items(self, keys: Iterable[ChannelKey]) -> dict[ChannelKey, ChannelState]:
        return self.store.get_items(keys)

    def write(self, changes: Sequence[tuple[ChannelState | None, ChannelState]]) -> None:
        events = news_from_changes(changes)
        self.store.save_batch(
            states=[new for _, new in changes],
            events=events,
            checks=[],
            notifiers=["n"],
            run_id="r",
            now=datetime.now(UTC),
        )
        self.told = [f"{p.event.type.value} {p.event.version}" for p in self.store.pending("n")]

    def current(self) -> str | None:
        return self.store.get_items([("dev001", 0)])[("dev001", 0)].current_version


class DynamoWrites:
    """The state table of a stack in moto, written as the checker writes it."""

    def __init__(self, stack: Any) -> None:
        self.client = stack.client("dynamodb")
        self.store = DynamoStateStore(self.client, stack.table_name("StateTable"))

    def get_items(self, keys: Iterable[ChannelKey]) -> dict[ChannelKey, ChannelState]:
        return self.store.get_items(keys)

    def write(self, changes: Sequence[tuple[ChannelState | None, ChannelState]]) -> None:
        self.refused = self.store.put_items([new for _, new in changes])

    def current(self) -> str | None:
        return self.store.get_items([("dev001", 0)])[("dev001", 0)].current_version


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, make_aws_stack: Callable[..., Any]
) -> SqliteWrites | DynamoWrites:
    if request.param == "sqlite":
        return SqliteWrites(tmp_path / "state.sqlite3")
    return DynamoWrites(make_aws_stack())


async def test_an_older_answer_written_last_tells_no_false_install(
    store: SqliteWrites | DynamoWrites,
) -> None:
    # Given the device known on 1.0
    device = Device(firmware("1.0"))
    store.write((await check_batch(device, ["dev001"], store, now=T0)).changes)
    # And two overlapping checks reading that state: A sees 1.1 on offer, then B (later)
    # sees 1.1 installed
    device.answer = firmware("1.0", offered="1.1")
    a = await check_batch(device, ["dev001"], store)
    device.answer = firmware("1.1")
    b = await check_batch(device, ["dev001"], store)
    # When B's write lands first and A's last
    store.write(b.changes)
    store.write(a.changes)
    # Then the device stays on 1.1, and "installed 1.1" is the only news: no "installed
    # 1.0 (from 1.1)", no offer of what is installed
    assert store.current() == "1.1"
    if isinstance(store, SqliteWrites):
        assert store.told == ["update_installed 1.1"]
    else:
        assert store.refused == [("dev001", 0), ("dev001", -1)]
