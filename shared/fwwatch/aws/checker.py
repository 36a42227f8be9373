"""The checker's service: the Lambda driver of the core cycle (:mod:`fwwatch.cycle`).

Each SQS record is one :class:`~fwwatch.messages.CheckMessage`. Its devices are checked and
settled by :func:`~fwwatch.cycle.check_batch`; what changed is written to the state table
(whose stream makes the news), each item naming the run that wrote it; devices to retry go
back to the queue as the next attempt, after the policy's delay; devices that gave up are
dead-lettered with their errors.

After the batch, one write per run counts the messages the invocation settled (and the
retries it sent) in the run table; the run's last message, which the scheduler sends once
its listing is finished, also writes how many the run has. The checker whose count
completes a run that wrote channel states claims the completion (a conditional write) and
asks for the run's digest, ``DIGEST_DELAY_S`` later, so that the table's stream is drained
first.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from ..cycle import DeviceRetryPolicy, Settlement, StateReader, check_batch
from ..messages import CheckMessage, DeadLetter, DigestReason, DigestRequest
from ..state import DEVICE_LEVEL_CHANNEL, ChannelKey, ChannelState
from ..tuya import TuyaFatalError
from .observability import logger, metrics
from .queue_sqs import SqsCheckQueue, SqsDigestQueue
from .run_table import DynamoRunTable, RunProgress
from .secrets import SecretReader, powertools_secret
from .settings import CheckerSettings
from .store_dynamodb import DynamoStateStore
from .tuya_access import TuyaAccess

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from ..tuya import TuyaClient

__all__ = ["CheckerService", "DigestQueue", "RetryQueue", "RunProgressTable", "StateTable"]

#: Set for the duration of one checker batch; its tasks carry it in their context.
_BATCH = contextvars.ContextVar[object | None]("fwwatch_batch", default=None)


class StateTable(StateReader, Protocol):
    """The state store, read by keys and written in batches (DynamoDB)."""

    def put_items(self, states: Sequence[ChannelState]) -> list[ChannelKey]:
        """Write these states, none over a newer one; the keys refused as stale."""
        ...


class RetryQueue(Protocol):
    """The check queue, for retries, and its dead-letter queue (SQS)."""

    def send(self, messages: list[CheckMessage], *, delay_s: int = 0) -> int:
        """Send the messages, held back ``delay_s`` seconds."""
        ...

    def dead_letter(self, letter: DeadLetter) -> None:
        """Put devices that gave up on the dead-letter queue."""
        ...


class RunProgressTable(Protocol):
    """Where the checkers count each run's settled messages (the run table)."""

    def note_changes(self, run_id: str) -> None: ...

    def settle(
        self,
        run_id: str,
        *,
        parts: int | None,
        settled: Iterable[str],
        retries: Iterable[str] = (),
    ) -> RunProgress: ...

    def claim_completion(self, run_id: str) -> bool: ...

    def release_completion(self, run_id: str) -> None: ...


class DigestQueue(Protocol):
    """Where a run's digest is asked for (SQS)."""

    def send(self, requests: Sequence[DigestRequest]) -> None: ...


@dataclass(frozen=True)
class _Settled:
    """A message the invocation settled: its place in the run, and the retry it sent."""

    run_id: str
    parts: int | None  # the run's number of messages, known to its last message
    key: str
    retry_key: str | None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class CheckerService:
    """Check the devices of a batch of messages; retry or dead-letter what failed."""

    def __init__(
        self,
        settings: CheckerSettings,
        *,
        store: StateTable,
        queue: RetryQueue,
        tuya: TuyaAccess,
        runs: RunProgressTable,
        digests: DigestQueue,
    ) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue
        self.tuya = tuya
        self.runs = runs
        self.digests = digests
        self.policy = DeviceRetryPolicy(
            max_attempts=settings.max_attempts, delay_s=settings.retry_delay_s
        )
        self._client_now: TuyaClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        # This invocation's: the messages settled (by SQS message ID), the runs whose
        # changes were noted.
        self._settled: dict[str, _Settled] = {}
        self._noted: set[str] = set()

    @classmethod
    def from_clients(
        cls,
        settings: CheckerSettings,
        *,
        sqs: Any,
        dynamodb: Any,
        read_secret: SecretReader = powertools_secret,
        transport: Any = None,
    ) -> CheckerService:
        """The service over boto3 clients (and, in tests, an HTTP transport for Tuya)."""
        return cls(
            settings,
            store=DynamoStateStore(dynamodb, settings.state_table),
            queue=SqsCheckQueue(
                sqs, settings.check_queue_url, dead_letter_url=settings.check_dead_letter_queue_url
            ),
            tuya=TuyaAccess(
                settings,
                # Tuya's ceiling is per project: each concurrent checker takes its share.
                qps=settings.qps_per_instance,
                dynamodb=dynamodb,
                rate_share=f"checker-of-{settings.checker_max_concurrency}",
                read_secret=read_secret,
                transport=transport,
            ),
            runs=DynamoRunTable(dynamodb, settings.run_table),
            digests=SqsDigestQueue(sqs, settings.digest_queue_url),
        )

    def handle(self, event: Mapping[str, Any], context: Any = None) -> PartialItemFailureResponse:
        """Process an SQS batch; failed records are reported, the rest are done.

        Powertools' batch processor runs the records on the container's loop (the rule of
        :mod:`fwwatch.aws.runtime`); the batch's one Tuya client is closed on that loop.
        """
        # Imported here: only the checker processes batches (the others start faster).
        from aws_lambda_powertools.utilities.batch import (
            AsyncBatchProcessor,
            EventType,
            async_process_partial_response,
        )

        if _running_loop() is not None:
            raise RuntimeError(
                "CheckerService.handle() runs its own event loop; call it from synchronous code"
            )
        # Every task of this batch inherits the mark, so that a batch cut short can end its
        # own unfinished checks, and nothing else, before the client closes.
        mark = _BATCH.set(object())
        self._settled, self._noted = {}, set()
        try:
            response = async_process_partial_response(
                event=dict(event),
                record_handler=self.check_record,
                processor=AsyncBatchProcessor(event_type=EventType.SQS),
                context=context,
            )
        finally:
            self._close_client(_BATCH.get())
            _BATCH.reset(mark)
        return self._count_settled(response)

    def _count_settled(self, response: PartialItemFailureResponse) -> PartialItemFailureResponse:
        """One write per run: the messages settled, the retries sent; then, if that completes
        the run, the claim and the digest request.

        When a run's count cannot be written, its messages are reported failed: they come
        back, are checked again (nothing changed: no write) and counted then.
        """
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        by_run: dict[str, dict[str, _Settled]] = {}
        for message_id, settled in self._settled.items():
            if message_id not in failed:
                by_run.setdefault(settled.run_id, {})[message_id] = settled
        self._settled = {}
        for run_id, messages in by_run.items():
            try:
                plans = [m.parts for m in messages.values() if m.parts is not None]
                progress = self.runs.settle(
                    run_id,
                    parts=max(plans, default=None),
                    settled=[m.key for m in messages.values()],
                    retries=[m.retry_key for m in messages.values() if m.retry_key],
                )
                if progress.complete and progress.completed_at is None:
                    self._ask_for_the_digest(progress)
            except (ClientError, BotoCoreError, RuntimeError) as exc:
                logger.error(f"could not count the run's settled messages: {exc}")
                response["batchItemFailures"] += [{"itemIdentifier": i} for i in messages]
        return response

    def _ask_for_the_digest(self, progress: RunProgress) -> None:
        if not progress.has_changes:
            logger.info("run complete, no state changed: no digest")
            return
        if not self.runs.claim_completion(progress.run_id):
            return  # another checker saw the completion first
        due = int(time.time()) + self.settings.digest_delay_s
        request = DigestRequest(
            run_id=progress.run_id, reason=DigestReason.COMPLETE, not_before=due
        )
        try:
            self.digests.send([request])
        except BaseException:
            self.runs.release_completion(progress.run_id)
            raise
        logger.info("run complete: digest asked for", extra={"messages": len(progress.settled)})

    def _client(self) -> TuyaClient:
        # One client (one rate limiter, one set of connections) for every record of the batch,
        # created on the loop that runs them.
        if self._client_now is None:
            self._client_now = self.tuya.client()
            self._client_loop = asyncio.get_running_loop()
        return self._client_now

    def _close_client(self, batch: object) -> None:
        client, loop = self._client_now, self._client_loop
        self._client_now = self._client_loop = None
        if client is None or loop is None or loop.is_closed():
            return
        # An error that escaped the batch (not a record's failure) leaves the other records'
        # checks pending on the loop, which Lambda keeps: end them before their connections
        # are closed under them, rather than let them wake in the next invocation.
        leftovers = [
            task
            for task in asyncio.all_tasks(loop)
            if not task.done() and task.get_context().get(_BATCH) is batch
        ]
        for task in leftovers:
            task.cancel()
        if leftovers:
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.run_until_complete(client.aclose())
        self.tuya.keep_learned_rate(client)

    async def check_record(self, record: SQSRecord) -> dict[str, Any]:
        """One message: check and settle its devices, write changes, re-queue retries."""
        message = CheckMessage.model_validate_json(record.body)
        logger.append_keys(run_id=message.run_id, message_id=record.message_id)
        try:
            batch = await check_batch(
                self._client(),
                message.device_ids,
                self.store,
                attempt=message.attempt,
                policy=self.policy,
                infos=message.infos,
                concurrency=self.settings.check_concurrency,
            )
        except TuyaFatalError as exc:
            # One clear line (the record fails and comes back; the alarms take it from there).
            logger.error(f"stopped: {exc}", extra={"code": exc.code, "tid": exc.tid})
            raise
        if batch.states:
            states = [state.model_copy(update={"run_id": message.run_id}) for state in batch.states]
            if message.run_id not in self._noted and any(
                state.channel != DEVICE_LEVEL_CHANNEL for state in states
            ):
                # Before the write: a run whose channels changed is digested at completion,
                # even when this invocation dies after writing and the redo finds no change.
                self.runs.note_changes(message.run_id)
                self._noted.add(message.run_id)
            if stale := self.store.put_items(states):
                logger.info("kept newer states", extra={"stale": len(stale)})
        retry_key = None
        if retry := batch.retry_ids:
            delay = self.policy.delay_before(message.attempt + 1, retry_after_s=batch.retry_after_s)
            again = message.retry(retry)
            self.queue.send([again], delay_s=round(delay))
            retry_key = again.progress_key
        gave_up = {r.device_id: r.error for r in batch.having(Settlement.GAVE_UP) if r.error}
        if gave_up:
            self.queue.dead_letter(DeadLetter.of(message, gave_up))
            logger.error("devices gave up", extra={"devices": sorted(gave_up)})
        checked = batch.having(Settlement.CHECKED)
        updates = sum(1 for r in checked if r.firmware is not None and r.firmware.update_available)
        metrics.add_metric(name="DevicesChecked", unit=MetricUnit.Count, value=len(checked))
        metrics.add_metric(name="UpdatesFound", unit=MetricUnit.Count, value=updates)
        _count_errors(r.error for r in batch.having(Settlement.DEVICE_ERROR, Settlement.GAVE_UP))
        if message.progress_key is not None:
            self._settled[record.message_id] = _Settled(
                message.run_id, message.parts, message.progress_key, retry_key
            )
        return {
            "checked": len(checked),
            "written": len(batch.states),
            "retry": retry,
            "gave_up": sorted(gave_up),
        }


def _count_errors(errors: Iterable[Any]) -> None:
    for error in errors:
        if error is not None:
            metrics.add_metric(
                name=f"TuyaError{error.code or 'Other'}", unit=MetricUnit.Count, value=1
            )
