"""One full cycle on one machine: discover, check, compare, store, notify, report.

Devices are checked in batches; each batch's changed states and the news they make are
stored in one SQLite transaction (the outbox). Notifiers then deliver whatever is pending,
including news a crashed or interrupted run stored but never sent. A notifier that fails
keeps its news pending for the next cycle and never blocks the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..check import CheckResult, check_devices, compare_results
from ..events import FirmwareEvent, group_events
from ..notify import Notifier, NotifyError
from ..state import DeviceInfo, utcnow
from ..tuya import TuyaClient, TuyaError, TuyaFatalError
from .store_sqlite import SqliteStore

__all__ = ["NotifierOutcome", "RunReport", "run_cycle"]

logger = logging.getLogger("fwwatch.local")


@dataclass
class NotifierOutcome:
    """What one notifier delivered in a run."""

    sent: int = 0
    failed: int = 0
    error: str | None = None


@dataclass
class RunReport:
    """What a run did, for people (:meth:`summary_line`) and machines (:meth:`as_dict`)."""

    run_id: str
    devices: int = 0
    checked: int = 0
    failed: list[CheckResult] = field(default_factory=list)
    events: list[FirmwareEvent] = field(default_factory=list)
    notifications: dict[str, NotifierOutcome] = field(default_factory=dict)
    duration_s: float = 0.0
    tuya_requests: int = 0
    interrupted: bool = False
    listing_error: str | None = None

    @property
    def not_checked(self) -> list[CheckResult]:
        """Devices the cloud gave no answer for (busy, unreachable, unreadable)."""
        return [result for result in self.failed if not result.answered]

    @property
    def device_errors(self) -> list[CheckResult]:
        """Devices that answered with a device-level error (offline, not in the project)."""
        return [result for result in self.failed if result.answered]

    @property
    def ok(self) -> bool:
        """Every device answered (offline counts), the listing worked, news went out."""
        return (
            not self.not_checked
            and self.listing_error is None
            and not self.interrupted
            and self.notification_failures == 0
        )

    @property
    def notification_failures(self) -> int:
        """Messages that could not be delivered (they stay queued)."""
        return sum(outcome.failed for outcome in self.notifications.values())

    def as_dict(self) -> dict[str, Any]:
        """The run report as ``fwwatch run --json`` prints it."""
        return {
            "run_id": self.run_id,
            "devices": self.devices,
            "checked": self.checked,
            "failed": [
                {
                    "device_id": result.device_id,
                    "outcome": result.outcome,
                    "code": result.error.code if result.error else None,
                    "msg": result.error.msg if result.error else "",
                }
                for result in self.failed
            ],
            "not_checked": len(self.not_checked),
            "device_errors": len(self.device_errors),
            "listing_error": self.listing_error,
            "events": [
                {
                    key: value
                    for key, value in event.as_dict().items()
                    if key
                    in (
                        "type",
                        "device_id",
                        "channel",
                        "product_id",
                        "previous_version",
                        "current_version",
                        "target_version",
                    )
                }
                for event in self.events
            ],
            "notifications": {
                name: {"sent": outcome.sent, "failed": outcome.failed, "error": outcome.error}
                for name, outcome in self.notifications.items()
            },
            "duration_s": round(self.duration_s, 3),
            "tuya_requests": self.tuya_requests,
            "interrupted": self.interrupted,
        }

    def summary_line(self) -> str:
        """One line a cron mail makes sense of."""
        sent = sum(outcome.sent for outcome in self.notifications.values())
        parts = [
            f"fwwatch run {self.run_id}: checked {self.checked} of {self.devices} devices",
            _count(len(self.device_errors), "device error"),
            f"{len(self.not_checked)} not checked",
            _count(len(self.events), "new event"),
            _count(sent, "notification") + " sent",
        ]
        if self.notification_failures:
            parts.append(f"{self.notification_failures} notifications queued for retry")
        if self.listing_error is not None:
            parts.append("device listing failed")
        if self.interrupted:
            parts.append("interrupted")
        return ", ".join(parts) + f" ({self.tuya_requests} Tuya requests, {self.duration_s:.1f} s)"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


async def run_cycle(
    client: TuyaClient,
    store: SqliteStore,
    notifiers: Sequence[Notifier],
    *,
    device_ids: Sequence[str] | None = None,
    notify_first_seen: bool = False,
    concurrency: int = 16,
    batch_size: int = 500,
    on_progress: Callable[[int, int], None] | None = None,
    stop: asyncio.Event | None = None,
    run_id: str | None = None,
) -> RunReport:
    """Run one cycle and return its report. A set ``stop`` event ends it after the batch."""
    started = time.monotonic()
    report = RunReport(run_id=run_id or uuid.uuid4().hex[:12])
    store.start_run(report.run_id, utcnow())
    requests_before = client.stats.requests
    infos: dict[str, DeviceInfo] = {}
    batches: asyncio.Queue[list[str] | None] = asyncio.Queue(maxsize=2)
    done = 0

    def tick() -> None:
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
            seen.add(device_id)
            report.devices += 1
            batch.append(device_id)
            if len(batch) >= batch_size:
                await batches.put(batch)
                batch = []

        try:
            if device_ids is not None:
                source: AsyncIterator[str] = _iterate(device_ids)
            else:
                source = _listed(client, infos)
            try:
                async for device_id in source:
                    await add(device_id)
            except TuyaFatalError:
                raise
            except TuyaError as exc:
                # The listing gave out (after its retries): check the devices known from
                # earlier runs all the same, and say the listing failed.
                report.listing_error = str(exc)
                known = [d for d in store.known_device_ids() if d not in seen]
                logger.warning(
                    "listing the devices failed (%s); checking the %d devices known from "
                    "earlier runs",
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
            await _check_batch(
                client, store, notifiers, batch, infos, report, notify_first_seen, concurrency, tick
            )
    finally:
        # Stops a lister still at work; re-raises the error of one that failed (a fatal
        # answer while listing ends the run like one while checking).
        lister.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lister
    report.notifications = await deliver_pending(store, notifiers)
    report.tuya_requests = client.stats.requests - requests_before
    report.duration_s = time.monotonic() - started
    store.finish_run(report.run_id, report.as_dict())
    return report


async def _iterate(device_ids: Sequence[str]) -> AsyncIterator[str]:
    for device_id in device_ids:
        yield device_id


async def _listed(client: TuyaClient, infos: dict[str, DeviceInfo]) -> AsyncIterator[str]:
    async for device in client.list_devices():
        if device.device_id not in infos:
            infos[device.device_id] = DeviceInfo.from_summary(device)
            yield device.device_id


async def _check_batch(
    client: TuyaClient,
    store: SqliteStore,
    notifiers: Sequence[Notifier],
    batch: list[str],
    infos: dict[str, DeviceInfo],
    report: RunReport,
    notify_first_seen: bool,
    concurrency: int,
    tick: Callable[[], None],
) -> None:
    results = await check_devices(
        client, batch, concurrency=concurrency, on_result=lambda _: tick()
    )
    now = utcnow()
    comparison = compare_results(
        results, store.load(batch), infos=infos, notify_first_seen=notify_first_seen, now=now
    )
    store.save_batch(
        states=comparison.changed_states,
        events=comparison.events,
        checks=[(r.device_id, r.ok, r.error.as_dict() if r.error else None) for r in results],
        notifiers=[notifier.name for notifier in notifiers],
        run_id=report.run_id,
        now=now,
    )
    report.checked += sum(1 for result in results if result.ok)
    report.failed.extend(result for result in results if not result.ok)
    report.events.extend(comparison.events)


async def deliver_pending(
    store: SqliteStore, notifiers: Sequence[Notifier]
) -> dict[str, NotifierOutcome]:
    """Send every notifier's pending news, grouped; notifiers run side by side."""
    outcomes = await asyncio.gather(*(_deliver(store, notifier) for notifier in notifiers))
    return {notifier.name: outcome for notifier, outcome in zip(notifiers, outcomes, strict=True)}


async def _deliver(store: SqliteStore, notifier: Notifier) -> NotifierOutcome:
    outcome = NotifierOutcome()
    pending = store.pending(notifier.name)
    ids_by_key = {item.event.dedupe_key: item.outbox_id for item in pending}
    for group in group_events(item.event for item in pending):
        outbox_ids = [ids_by_key[event.dedupe_key] for event in group.events]
        try:
            await notifier.send(group)
        except NotifyError as exc:
            outcome.failed += 1
            outcome.error = str(exc)
            store.mark_failed(notifier.name, outbox_ids, str(exc))
            logger.warning(
                "%s: could not deliver (kept for the next cycle): %s", notifier.name, exc
            )
            continue
        except Exception as exc:  # a notifier's bug must not lose the news nor stop the others
            outcome.failed += 1
            outcome.error = f"{type(exc).__name__}: {exc}"
            store.mark_failed(notifier.name, outbox_ids, outcome.error)
            logger.exception("%s: unexpected error while delivering", notifier.name)
            continue
        outcome.sent += 1
        store.mark_delivered(notifier.name, outbox_ids, utcnow())
    return outcome
