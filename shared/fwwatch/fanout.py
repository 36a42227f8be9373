"""A run's devices onto the check queue as they are listed, page by page, resumable.

Listing a big project outlasts one invocation (200,000 devices are 10,000 pages of 20), so
:func:`fan_out` sends check messages while it lists, and stops between two pages when told
to (its time is running out). It returns a :class:`ListingCheckpoint`, all that the next
invocation needs to go on; the checkpoints it saves on the way are where a retry resumes
after a crash.

Messages are numbered in the run's plan (``part``, from 0) as they go out. The run's last
message is held back until the listing's end is known: it alone carries ``parts``, the
run's number of messages, so that the run cannot look complete while it is still being
listed (see :attr:`fwwatch.aws.run_table.RunProgress.complete`). A message resent after a
crash has the number it had, so the run counts it once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from .cycle import listed_device_id
from .messages import CheckMessage
from .state import DeviceInfo
from .tuya import DevicePage, DeviceSummary

__all__ = [
    "CHECKPOINT_EVERY",
    "SEND_BATCH",
    "ConfiguredDevices",
    "FanOutResult",
    "ListingCheckpoint",
    "PageLister",
    "fan_out",
]

#: Messages sent together (one SQS SendMessageBatch).
SEND_BATCH = 10
#: Sends between two checkpoints. A checkpoint is a write; a crash re-sends what went out
#: after the last one (the same parts, which the run counts once): five sends are 5,000
#: devices at 100 a message, a few minutes of listing, for a write every 5,000 devices.
CHECKPOINT_EVERY = 5


class PageLister(Protocol):
    """Anything that lists a project's devices a page at a time: the Tuya client."""

    def list_device_pages(self, cursor: str | None = None) -> AsyncGenerator[DevicePage]:
        """The pages from ``cursor`` (``None``: the first) to the last (no next cursor)."""
        ...


class ConfiguredDevices:
    """A fixed list of device IDs as a listing of one page (the ``DeviceIds`` parameter)."""

    def __init__(self, device_ids: Sequence[str]) -> None:
        self.device_ids = tuple(device_ids)

    async def list_device_pages(self, cursor: str | None = None) -> AsyncGenerator[DevicePage]:
        """The one page (a resumed listing of one page starts it again)."""
        yield DevicePage(tuple(DeviceSummary(device_id=d) for d in self.device_ids), None)


class ListingCheckpoint(BaseModel):
    """Where a run's listing stands, between two pages.

    ``cursor`` is the next page's (``None``: the first page), ``next_part`` the number of
    the next message, ``pending`` the devices listed and not sent yet (about a page's
    worth, or at a hand-off the held-back last message) with their ``infos``, ``listed``
    the devices listed so far, sent or pending.
    """

    model_config = ConfigDict(frozen=True)

    cursor: str | None = None
    next_part: int = Field(default=0, ge=0)
    pending: tuple[str, ...] = ()
    infos: dict[str, DeviceInfo] = Field(default_factory=dict)
    listed: int = Field(default=0, ge=0)


@dataclass(frozen=True)
class FanOutResult:
    """What one :func:`fan_out` did: where the listing stands, and what it sent."""

    checkpoint: ListingCheckpoint
    finished: bool  # the last page was listed and the run's last message sent
    messages: int  # sent by this call
    devices: int  # in those messages

    @property
    def parts(self) -> int | None:
        """The run's number of check messages, once the listing is finished."""
        return self.checkpoint.next_part if self.finished else None


def _info(summary: DeviceSummary) -> DeviceInfo | None:
    info = DeviceInfo.from_summary(summary)
    return info if info != DeviceInfo() else None


async def fan_out(
    lister: PageLister,
    *,
    run_id: str,
    start: ListingCheckpoint,
    per_message: int,
    send: Callable[[list[CheckMessage]], object],
    save: Callable[[ListingCheckpoint], object],
    go_on: Callable[[], bool],
    checkpoint_every: int = CHECKPOINT_EVERY,
) -> FanOutResult:
    """List the run's devices from ``start`` and send them as check messages as they come.

    Whenever the devices listed make :data:`SEND_BATCH` messages (and more follow), those
    are sent together; after every ``checkpoint_every`` such sends, ``save`` keeps the
    checkpoint: a crash after it resends nothing before it. After each page, ``go_on()``
    is asked whether there is time for another; when there is not, the whole messages
    listed are sent and the checkpoint to go on from is returned. Invalid IDs in the
    listing are skipped with a warning (the cycle's rule), and a device listed twice in one
    call is sent once.
    """
    pending = list(start.pending)
    infos = dict(start.infos)
    seen = set(pending)
    part, cursor, listed = start.next_part, start.cursor, start.listed
    sent_messages = sent_devices = sends_unsaved = 0

    def send_messages(count: int | None, *, last: bool = False) -> None:
        """Send ``count`` whole messages of the pending devices (``None``: every whole
        message that more devices follow; with ``last``, the rest as the last message)."""
        nonlocal part, sent_messages, sent_devices
        messages: list[CheckMessage] = []
        while (len(pending) > per_message or (last and pending)) and (
            count is None or len(messages) < count
        ):
            chunk = pending[:per_message]
            del pending[:per_message]
            messages.append(
                CheckMessage(
                    run_id=run_id,
                    device_ids=tuple(chunk),
                    infos={d: infos.pop(d) for d in chunk if d in infos},
                    part=part,
                    parts=part + 1 if last and not pending else None,
                )
            )
            part += 1
        if messages:
            send(messages)
            sent_messages += len(messages)
            sent_devices += sum(len(message.device_ids) for message in messages)

    def checkpoint() -> ListingCheckpoint:
        return ListingCheckpoint(
            cursor=cursor,
            next_part=part,
            pending=tuple(pending),
            infos={d: infos[d] for d in pending if d in infos},
            listed=listed,
        )

    async with aclosing(lister.list_device_pages(cursor)) as pages:
        async for page in pages:
            for summary in page.devices:
                device_id = listed_device_id(summary)
                if device_id is None or device_id in seen:
                    continue
                seen.add(device_id)
                pending.append(device_id)
                listed += 1
                if (info := _info(summary)) is not None:
                    infos[device_id] = info
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
            while len(pending) > SEND_BATCH * per_message:
                send_messages(SEND_BATCH)
                sends_unsaved += 1
                if sends_unsaved >= checkpoint_every:
                    save(checkpoint())
                    sends_unsaved = 0
            if not go_on():
                send_messages(None)
                return FanOutResult(checkpoint(), False, sent_messages, sent_devices)
    send_messages(None, last=True)
    return FanOutResult(checkpoint(), True, sent_messages, sent_devices)
