"""One full cycle on one machine: discover, check, compare, store, notify, report.

This is local mode's driver of the core cycle (:mod:`fwwatch.cycle`; the checker Lambda is
the other one). Devices are checked in batches; each batch's changed states and the news
they make are stored in one SQLite transaction (the outbox). Devices that failed transiently
are checked again in-process, after the policy's wait. Notifiers then deliver whatever is
pending, including news a crashed or interrupted run stored but never sent. A notifier that
fails keeps its news pending for the next cycle and never blocks the others; one that cannot
tell whether a message arrived (:class:`~fwwatch.notify.DeliveryUncertainError`) has it
recorded as delivered-uncertain, reported and never sent again. Last, a
:class:`StatePublisher` (Home Assistant over MQTT) is given the project as the run found it.

The offer of a version the operator ignores (:mod:`fwwatch.ignored`) is held back rather
than queued; the first run after its ignore is removed tells it, if it is still on offer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Collection, Coroutine, Iterable, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ..check import CheckResult, FirmwareSource, Progress
from ..cycle import DeviceLister, DeviceRetryPolicy, Settlement, StateReader, check_batch, discover
from ..events import EventType, FirmwareEvent, ReleaseKey, group_events, release_of
from ..ignored import IgnoredVersions, release_held
from ..notify import DeliveryUncertainError, Notifier, NotifyError, RunDigestNotifier
from ..render import run_digest
from ..state import ChannelState, DeviceInfo, utcnow
from ..tuya import TuyaError, TuyaFatalError
from .report import NotifierOutcome, PublishOutcome, RunReport

if TYPE_CHECKING:
    from ..tuya import ClientStats
    from .store_sqlite import PendingEvent

__all__ = [
    "CloudClient",
    "NotifierOutcome",
    "RunReport",
    "RunStore",
    "StatePublisher",
    "deliver_pending",
    "run_cycle",
]

logger = logging.getLogger("fwwatch.local")


class CloudClient(FirmwareSource, DeviceLister, Protocol):
    """What a run needs of the Tuya client: firmware, the listing, and its request count."""

    @property
    def stats(self) -> ClientStats:
        """What the client did so far."""
        ...


class RunStore(StateReader, Protocol):
    """What a run needs of its store: keyed reads, the outbox, runs and known devices."""

    def save_batch(
        self,
        *,
        states: Sequence[ChannelState],
        events: Sequence[FirmwareEvent],
        checks: Sequence[tuple[str, bool, dict[str, Any] | None]],
        notifiers: Sequence[str],
        run_id: str,
        now: datetime,
        held: Sequence[FirmwareEvent] = (),
        notify_events: Collection[EventType] | None = None,
    ) -> int:
        """Keep a batch's states, news, held-back news and check times in one transaction;
        queue the news of the ``notify_events`` types (default all) for the notifiers, and
        record the rest."""
        ...

    def ignored_versions(self) -> IgnoredVersions:
        """The versions whose offers are not news."""
        ...

    def held_news(self, ignored: IgnoredVersions) -> list[FirmwareEvent]:
        """Held-back offers that ``ignored`` no longer covers."""
        ...

    def release_held(
        self,
        *,
        tell: Sequence[FirmwareEvent],
        forget: Sequence[FirmwareEvent],
        notifiers: Sequence[str],
        run_id: str,
        now: datetime,
    ) -> int:
        """Queue ``tell`` as news and drop ``forget`` from the held news, in one transaction."""
        ...

    def known_device_ids(self) -> list[str]:
        """Every device an earlier run checked or tried to."""
        ...

    def pending(self, notifier: str) -> list[PendingEvent]:
        """News not yet delivered by ``notifier``."""
        ...

    def mark_delivered(self, notifier: str, outbox_ids: Iterable[int], now: datetime) -> None:
        """Record a delivery."""
        ...

    def mark_failed(self, notifier: str, outbox_ids: Iterable[int], error: str) -> None:
        """Record a failed delivery (the news stays pending)."""
        ...

    def mark_uncertain(
        self, notifier: str, outbox_ids: Iterable[int], error: str, now: datetime
    ) -> None:
        """Record a delivery that may or may not have arrived (never sent again)."""
        ...

    def start_run(self, run_id: str, now: datetime) -> None:
        """Record the start of a run."""
        ...

    def finish_run(self, run_id: str, report: dict[str, Any]) -> None:
        """Record the end of a run with its report."""
        ...


class StatePublisher(Protocol):
    """Mirrors the stored state elsewhere after each run (Home Assistant over MQTT)."""

    async def publish(self, project: Set[str] | None) -> PublishOutcome:
        """Publish what changed since the last time; ``project`` is the project's devices
        when the run listed them all. Never raises: a failure is in the outcome."""
        ...


@dataclass
class _Run:
    """One run under way: its report, and the devices waiting for another check."""

    client: CloudClient
    store: RunStore
    notifiers: Sequence[Notifier]
    report: RunReport
    policy: DeviceRetryPolicy
    notify_first_seen: bool
    concurrency: int
    notify_events: frozenset[EventType] | None = None
    #: Loaded once, when the run starts: an ignore added or removed meanwhile counts from
    #: the next run on.
    ignored: IgnoredVersions = field(default_factory=IgnoredVersions)
    infos: dict[str, DeviceInfo] = field(default_factory=dict)
    #: Devices to check again, with their last failed result (reported if never retried).
    waiting: dict[str, CheckResult] = field(default_factory=dict)
    retry_after_s: float | None = None

    def keep_waiting(self) -> None:
        """Report and record the devices still waiting (the run was stopped): their last
        error is kept as their check, their states untouched."""
        waiting = list(self.waiting.values())
        self.waiting.clear()
        self.report.failed += waiting
        if waiting:
            self.store.save_batch(
                states=[],
                events=[],
                checks=[
                    (r.device_id, False, r.error.as_dict() if r.error else None) for r in waiting
                ],
                notifiers=[],
                run_id=self.report.run_id,
                now=utcnow(),
            )

    async def check(
        self, device_ids: Sequence[str], attempt: int, on_result: Progress | None = None
    ) -> None:
        """Check and settle a batch; keep what is final, queue the rest for another check."""
        batch = await check_batch(
            self.client,
            device_ids,
            self.store,
            attempt=attempt,
            policy=self.policy,
            infos=self.infos,
            concurrency=self.concurrency,
            on_result=on_result,
        )
        settled = batch.settled
        # The states are written all the same (status shows the ignored offer); only the
        # news of an ignored offer is held back.
        news, held = self.ignored.split(batch.news(notify_first_seen=self.notify_first_seen))
        self.store.save_batch(
            states=batch.states,
            events=news,
            held=held,
            checks=[(r.device_id, r.ok, r.error.as_dict() if r.error else None) for r in settled],
            notifiers=[notifier.name for notifier in self.notifiers],
            run_id=self.report.run_id,
            now=batch.now,
            notify_events=self.notify_events,
        )
        for result in settled:
            self.waiting.pop(result.device_id, None)
        for result in batch.having(Settlement.RETRY):
            self.waiting[result.device_id] = result
        if batch.retry_after_s is not None:
            self.retry_after_s = max(self.retry_after_s or 0.0, batch.retry_after_s)
        self.report.checked += len(batch.having(Settlement.CHECKED))
        self.report.failed += batch.having(Settlement.DEVICE_ERROR, Settlement.GAVE_UP)
        self.report.events += news
        self.report.ignored_offers += len(held)

    def release_held(self) -> None:
        """Tell the held-back offers whose ignore was removed, where they are still on offer."""
        held = self.store.held_news(self.ignored)
        if not held:
            return
        states = self.store.get_items((event.device_id, event.channel) for event in held)
        release = release_held(held, self.ignored, states)
        # Held news is offers only: told to nobody when FWWATCH_EVENTS leaves offers out.
        told = self.notify_events is None or EventType.UPDATE_AVAILABLE in self.notify_events
        self.store.release_held(
            tell=release.tell,
            forget=release.forget,
            notifiers=[notifier.name for notifier in self.notifiers] if told else [],
            run_id=self.report.run_id,
            now=utcnow(),
        )
        self.report.events += release.tell


async def run_cycle(
    client: CloudClient,
    store: RunStore,
    notifiers: Sequence[Notifier],
    *,
    device_ids: Sequence[str] | None = None,
    notify_first_seen: bool = False,
    concurrency: int = 16,
    batch_size: int = 500,
    retry: DeviceRetryPolicy | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    stop: asyncio.Event | None = None,
    run_id: str | None = None,
    digest_per_run: bool = False,
    home_assistant: StatePublisher | None = None,
    notify_events: Collection[EventType] | None = None,
) -> RunReport:
    """Run one cycle and return its report. A set ``stop`` event ends it after the batch.

    Devices that fail transiently are checked again, ``retry`` deciding how often and after
    how long (the checker Lambda follows the same policy through its queue). With
    ``digest_per_run``, e-mail and Apprise tell the run's news in one message (see
    :func:`deliver_pending`).
    After the notifiers, ``home_assistant`` publishes the state as it now stands. The
    notifiers get the news of the ``notify_events`` types only (every type by default); the
    report and the state keep all of it.
    """
    started = time.monotonic()
    report = RunReport(run_id=run_id or uuid.uuid4().hex[:12])
    run = _Run(
        client,
        store,
        notifiers,
        report,
        retry or DeviceRetryPolicy(),
        notify_first_seen,
        concurrency,
        None if notify_events is None else frozenset(notify_events),
        ignored=store.ignored_versions(),
    )
    store.start_run(report.run_id, utcnow())
    requests_before = client.stats.requests
    batches: asyncio.Queue[list[str] | None] = asyncio.Queue(maxsize=2)
    done = 0

    def tick(_: CheckResult) -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, max(done, report.devices))

    async def list_in_batches() -> None:
        # Listing pages (20 devices each on /v2.0) while earlier batches are being checked
        # hides the listing's latency behind the checks.
        batch: list[str] = []
        seen: set[str] = set()

        async def add(device_id: str) -> None:
            nonlocal batch
            if device_id in seen:
                return
            seen.add(device_id)
            report.devices += 1
            batch.append(device_id)
            if len(batch) >= batch_size:
                await batches.put(batch)
                batch = []

        try:
            if device_ids is not None:
                for device_id in device_ids:
                    await add(device_id)
            else:
                try:
                    async for device_id, info in discover(client):
                        run.infos[device_id] = info
                        await add(device_id)
                    # Only a whole listing says which devices left the project.
                    report.project_devices = frozenset(seen)
                except TuyaFatalError:
                    raise
                except TuyaError as exc:
                    # The listing gave out (after its retries): check the devices known
                    # from earlier runs all the same, and say the listing failed.
                    report.listing_error = str(exc)
                    known = [d for d in store.known_device_ids() if d not in seen]
                    logger.warning(
                        "listing the devices failed (%s); checking the %d devices known "
                        "from earlier runs",
                        exc,
                        len(known),
                    )
                    for device_id in known:
                        await add(device_id)
            if batch:
                await batches.put(batch)
        except asyncio.CancelledError:
            # Checking failed and nobody reads the queue any more: do not wait on it.
            with contextlib.suppress(asyncio.QueueFull):
                batches.put_nowait(None)
            raise
        except BaseException:
            await batches.put(None)  # the run's loop ends, and raises this (a fatal answer)
            raise
        else:
            await batches.put(None)

    lister = asyncio.create_task(list_in_batches())
    try:
        while (batch := await batches.get()) is not None:
            if stop is not None and stop.is_set():
                report.interrupted = True
                break
            await run.check(batch, 1, tick)
    finally:
        # Stops a lister still at work; re-raises the error of one that failed (a fatal
        # answer while listing ends the run like one while checking).
        lister.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lister
    try:
        if not report.interrupted:
            report.interrupted = not await _check_again(run, batch_size, stop)
    except TuyaFatalError:
        # No later check can do better; what this run found and stored still goes out.
        await deliver_pending(store, notifiers, run_id=report.run_id, digest_per_run=digest_per_run)
        raise
    run.release_held()  # after the checks: told only if still true of the states just seen
    run.keep_waiting()
    report.notifications = await deliver_pending(
        store, notifiers, run_id=report.run_id, digest_per_run=digest_per_run
    )
    if home_assistant is not None:
        report.home_assistant = await home_assistant.publish(report.project_devices)
    report.tuya_requests = client.stats.requests - requests_before
    report.duration_s = time.monotonic() - started
    store.finish_run(report.run_id, report.as_dict())
    return report


async def _check_again(run: _Run, batch_size: int, stop: asyncio.Event | None) -> bool:
    """Check the waiting devices again under the run's policy; ``False`` when stopped."""
    attempt = 1
    while run.waiting:
        attempt += 1
        delay = run.policy.delay_before(attempt, retry_after_s=run.retry_after_s)
        run.retry_after_s = None
        # A warning: the progress line is complete, and the run is not done yet.
        logger.warning(
            "%d devices could not be checked; checking them again in %.0f s (check %d of %d)",
            len(run.waiting),
            delay,
            attempt,
            run.policy.max_attempts,
        )
        if not await _wait(delay, stop):
            return False
        todo = list(run.waiting)
        for start in range(0, len(todo), batch_size):
            if stop is not None and stop.is_set():
                return False
            await run.check(todo[start : start + batch_size], attempt)
    return True


async def _wait(seconds: float, stop: asyncio.Event | None) -> bool:
    """Sleep, or end early when ``stop`` is set; ``False`` when stopped."""
    if stop is None:
        await asyncio.sleep(seconds)
        return True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return not stop.is_set()


async def deliver_pending(
    store: RunStore,
    notifiers: Sequence[Notifier],
    *,
    run_id: str = "",
    digest_per_run: bool = False,
) -> dict[str, NotifierOutcome]:
    """Send every notifier's pending news, grouped; notifiers run side by side.

    With ``digest_per_run``, a notifier that can (:class:`~fwwatch.notify.RunDigestNotifier`,
    e-mail, Apprise) sends all of it as one message naming ``run_id``, instead of one per release.
    """
    outcomes = await asyncio.gather(
        *(_deliver(store, notifier, run_id, digest_per_run) for notifier in notifiers)
    )
    return {notifier.name: outcome for notifier, outcome in zip(notifiers, outcomes, strict=True)}


async def _deliver(
    store: RunStore, notifier: Notifier, run_id: str, digest_per_run: bool
) -> NotifierOutcome:
    outcome = NotifierOutcome()
    pending = store.pending(notifier.name)
    # A message tells a device channel's latest news of its release; older pending news of
    # the same release and device goes out with it, and is marked with it.
    ids_by_release: dict[ReleaseKey, list[int]] = {}
    for item in pending:
        ids_by_release.setdefault(release_of(item.event), []).append(item.outbox_id)
    groups = group_events(item.event for item in pending)
    if digest_per_run and groups and isinstance(notifier, RunDigestNotifier):
        digest = run_digest(run_id or "local", groups)
        await _send_one(
            store, notifier, notifier.send_run(digest), [i.outbox_id for i in pending], outcome
        )
        return outcome
    for group in groups:
        outbox_ids = ids_by_release[release_of(group.events[0])]
        await _send_one(store, notifier, notifier.send(group), outbox_ids, outcome)
    return outcome


async def _send_one(
    store: RunStore,
    notifier: Notifier,
    sending: Coroutine[Any, Any, None],
    outbox_ids: list[int],
    outcome: NotifierOutcome,
) -> None:
    """Await one message's delivery, then record what became of it (the outbox rule)."""
    try:
        await sending
    except DeliveryUncertainError as exc:
        # Sending it again could post it once more (or again and again, each time the
        # webhook is slow): kept as delivered, with the doubt said in the report.
        outcome.uncertain += 1
        outcome.error = str(exc)
        store.mark_uncertain(notifier.name, outbox_ids, str(exc), utcnow())
        logger.warning(
            "%s: the message may not have arrived, and is not sent again: %s", notifier.name, exc
        )
        return
    except NotifyError as exc:
        outcome.failed += 1
        outcome.error = str(exc)
        store.mark_failed(notifier.name, outbox_ids, str(exc))
        logger.warning("%s: could not deliver (kept for the next cycle): %s", notifier.name, exc)
        return
    except Exception as exc:  # a notifier's bug must not lose the news nor stop the others
        outcome.failed += 1
        outcome.error = f"{type(exc).__name__}: {exc}"
        store.mark_failed(notifier.name, outbox_ids, outcome.error)
        logger.exception("%s: unexpected error while delivering", notifier.name)
        return
    outcome.sent += 1
    store.mark_delivered(notifier.name, outbox_ids, utcnow())
