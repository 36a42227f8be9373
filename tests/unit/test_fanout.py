"""A run's devices onto the queue as they are listed: one pass, or stopped and resumed."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

import pytest

from fwwatch.fanout import (
    CHECKPOINT_EVERY,
    SEND_BATCH,
    ConfiguredDevices,
    FanOutResult,
    ListingCheckpoint,
    fan_out,
)
from fwwatch.messages import CheckMessage
from fwwatch.tuya import DevicePage, DeviceSummary


class PagedProject:
    """A project's listing as Tuya's: ``page_size`` devices a page, the cursor a page's last
    ID, and the end known only from a short (or empty) page."""

    def __init__(self, ids: list[str], page_size: int = 20) -> None:
        self.ids = ids
        self.page_size = page_size
        self.pages_served = 0

    async def list_device_pages(self, cursor: str | None = None) -> AsyncGenerator[DevicePage]:
        start = self.ids.index(cursor) + 1 if cursor else 0
        while True:
            chunk = self.ids[start : start + self.page_size]
            self.pages_served += 1
            last = len(chunk) < self.page_size
            yield DevicePage(
                tuple(DeviceSummary(device_id=d, name=d.upper()) for d in chunk),
                None if last else chunk[-1],
            )
            if last:
                return
            start += self.page_size


class Queue:
    """The check queue: every send, as sent."""

    def __init__(self) -> None:
        self.sends: list[list[CheckMessage]] = []

    def send(self, messages: list[CheckMessage]) -> None:
        self.sends.append(messages)

    @property
    def messages(self) -> list[CheckMessage]:
        return [message for send in self.sends for message in send]


def ids(count: int) -> list[str]:
    return [f"dev{i:05d}" for i in range(count)]


async def list_once(
    lister: PagedProject | ConfiguredDevices,
    queue: Queue,
    *,
    start: ListingCheckpoint | None = None,
    per_message: int = 10,
    go_on: Callable[[], bool] = lambda: True,
    saved: list[ListingCheckpoint] | None = None,
) -> FanOutResult:
    return await fan_out(
        lister,
        run_id="run1",
        start=start or ListingCheckpoint(),
        per_message=per_message,
        send=queue.send,
        save=(saved if saved is not None else []).append,
        go_on=go_on,
    )


def plan(messages: list[CheckMessage]) -> list[tuple[int | None, int | None, tuple[str, ...]]]:
    return sorted((m.part, m.parts, m.device_ids) for m in messages)


async def test_one_pass_numbers_the_messages_and_only_the_last_knows_the_plan() -> None:
    queue = Queue()
    result = await list_once(PagedProject(ids(95)), queue)
    # Then every device is in one message, in listing order, ten a message
    assert [d for m in queue.messages for d in m.device_ids] == ids(95)
    assert [m.part for m in queue.messages] == list(range(10))
    # And the last message alone carries the run's number of messages
    assert [m.parts for m in queue.messages] == [None] * 9 + [10]
    assert (result.finished, result.parts, result.checkpoint.listed) == (True, 10, 95)
    # And the names the listing gave travel with the devices
    assert queue.messages[0].infos["dev00000"].device_name == "DEV00000"


async def test_messages_go_out_ten_at_a_time_with_a_checkpoint_every_few_sends() -> None:
    queue, saved = Queue(), []
    await list_once(PagedProject(ids(1_000)), queue, saved=saved)
    # Every send but the last is one SQS batch
    assert [len(send) for send in queue.sends] == [SEND_BATCH] * 9 + [10]
    # And a checkpoint follows every CHECKPOINT_EVERY of those (one write per few sends)
    every = SEND_BATCH * CHECKPOINT_EVERY
    assert [checkpoint.next_part for checkpoint in saved] == list(range(every, 91, every))
    # And a checkpoint holds no more than a page of devices not sent yet
    assert all(len(checkpoint.pending) <= 20 for checkpoint in saved)


@pytest.mark.parametrize("pages_per_step", [1, 2, 7])
async def test_a_listing_stopped_and_resumed_sends_what_one_pass_sends(pages_per_step: int) -> None:
    # Given one pass over the project, and the same listing stopped every few pages
    project = PagedProject(ids(333))
    whole = Queue()
    await list_once(project, whole)
    in_steps, checkpoint, steps = Queue(), ListingCheckpoint(), 0

    def until(pages: int) -> Callable[[], bool]:
        return lambda: project.pages_served < pages

    while True:
        result = await list_once(
            project,
            in_steps,
            start=checkpoint,
            go_on=until(project.pages_served + pages_per_step),
        )
        steps += 1
        if result.finished:
            break
        checkpoint = result.checkpoint
        # (A step that stops sends every whole message it listed but the last)
        assert len(checkpoint.pending) <= 10
    # Then the steps sent the same messages, numbered the same, each page listed once
    assert plan(in_steps.messages) == plan(whole.messages)
    assert steps == -(-17 // pages_per_step)
    assert project.pages_served == 2 * 17


async def test_the_last_message_waits_for_the_end_of_the_listing() -> None:
    # Given a project of two full pages, and a step that stops after them
    project, queue = PagedProject(ids(40)), Queue()
    result = await list_once(project, queue, go_on=lambda: project.pages_served < 2)
    # Then the step sent every message but the last, whose devices wait in the checkpoint
    assert [m.parts for m in queue.messages] == [None, None, None]
    assert (result.finished, result.checkpoint.pending) == (False, tuple(ids(40)[30:]))
    # And the next step, finding the listing's end, sends it as the last message
    result = await list_once(project, queue, start=result.checkpoint)
    assert [(m.part, m.parts) for m in queue.messages][-1:] == [(3, 4)]
    assert result.parts == 4


async def test_a_crash_resumes_from_the_last_checkpoint_and_numbers_the_same() -> None:
    # Given a queue that fails the send after the first checkpoint's next one
    project, whole = PagedProject(ids(777)), Queue()
    await list_once(project, whole)
    failing_send = CHECKPOINT_EVERY + 1

    class FailingQueue(Queue):
        def send(self, messages: list[CheckMessage]) -> None:
            if len(self.sends) == failing_send:
                raise ConnectionError("the queue is down")
            super().send(messages)

    failing, saved = FailingQueue(), []
    with pytest.raises(ConnectionError):
        await list_once(project, failing, saved=saved)
    assert len(saved) == 1
    # When the listing goes on from the last checkpoint saved
    retry = Queue()
    result = await list_once(project, retry, start=saved[-1])
    # Then the retry sent the plan from the checkpoint on, numbered as one pass numbers it
    assert result.finished
    after = saved[-1].next_part
    assert plan(retry.messages) == [m for m in plan(whole.messages) if (m[0] or 0) >= after]
    # And what the crash resent is only what went out after the checkpoint
    assert plan(failing.messages) == plan(whole.messages)[: len(failing.messages)]
    resent = {m.part for m in failing.messages} & {m.part for m in retry.messages}
    assert resent == set(range(after, after + SEND_BATCH))


async def test_an_invalid_or_repeated_listed_id_is_skipped() -> None:
    queue = Queue()
    await list_once(PagedProject(["dev1", "..", "dev2", "dev1", "dev3"], page_size=2), queue)
    assert [m.device_ids for m in queue.messages] == [("dev1", "dev2", "dev3")]


async def test_configured_devices_are_one_page_without_names() -> None:
    queue = Queue()
    result = await list_once(ConfiguredDevices(ids(25)), queue)
    assert [len(m.device_ids) for m in queue.messages] == [10, 10, 5]
    assert [m.infos for m in queue.messages] == [{}, {}, {}]
    assert result.parts == 3


async def test_a_project_without_devices_plans_nothing() -> None:
    queue = Queue()
    result = await list_once(PagedProject([]), queue)
    assert (queue.messages, result.finished, result.parts) == ([], True, 0)


def test_a_checkpoint_reads_back_as_written() -> None:
    checkpoint = ListingCheckpoint(cursor="dev00019", next_part=3, pending=("dev00020",), listed=21)
    assert ListingCheckpoint.model_validate_json(checkpoint.model_dump_json()) == checkpoint
