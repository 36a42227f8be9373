"""What each function does, wired to AWS: the handlers only build one of these and call it.

Every service takes its AWS clients (and, for Tuya, an optional HTTP transport) as
arguments, so tests run the real code on moto and the simulator, with nothing patched.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from ..pipeline import (
    CheckMessage,
    check_message,
    news_from_changes,
    plan_messages,
    publish_news,
)
from ..render import group_from_json
from ..state import DeviceInfo, StateImageError
from ..tuya import InvalidDeviceIdError, TuyaFatalError, TuyaSettings, validate_device_id
from .ledger_dynamodb import DynamoNewsLedger
from .observability import logger, metrics
from .publish_sns import SnsPublisher
from .queue_sqs import SqsCheckQueue
from .rate_dynamodb import DynamoRateMemory
from .settings import (
    CheckerSettings,
    DifferSettings,
    SchedulerSettings,
    SlackSettings,
    TuyaAccessSettings,
    tuya_settings_from_secret,
)
from .store_dynamodb import DynamoStateStore, state_from_image
from .token_dynamodb import DynamoTokenStore

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from ..tuya import TuyaClient

__all__ = ["CheckerService", "DifferService", "SchedulerService", "SlackService"]

SecretReader = Callable[[str], Any]


def powertools_secret(name: str) -> Any:
    """A secret's value through Powertools Parameters (JSON decoded, cached five minutes)."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(name, max_age=300)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


#: Set for the duration of one checker batch; its tasks carry it in their context.
_BATCH = contextvars.ContextVar[object | None]("fwwatch_batch", default=None)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _TuyaUser:
    """Shared by the functions that call Tuya: credentials from the secret, a shared token."""

    def __init__(
        self,
        settings: TuyaAccessSettings,
        *,
        qps: float,
        dynamodb: Any,
        read_secret: SecretReader,
        rate_share: str,
        transport: Any = None,
    ) -> None:
        self._endpoint = settings.tuya_endpoint
        self._secret_name = settings.tuya_secret_name
        self._qps = qps
        self._retry = (settings.tuya_retry_attempts, settings.tuya_retry_budget_s)
        self._timeout_s = settings.tuya_timeout_s
        self._dynamodb = dynamodb
        self._control_table = settings.control_table
        self._rate_share = rate_share
        self.tokens = DynamoTokenStore(dynamodb, settings.control_table)
        self.rates: DynamoRateMemory | None = None
        self._read_secret = read_secret
        self._transport = transport

    def tuya_settings(self) -> TuyaSettings:
        return tuya_settings_from_secret(
            self._read_secret(self._secret_name),
            endpoint=self._endpoint,
            qps=self._qps,
            retry_attempts=self._retry[0],
            retry_budget_s=self._retry[1],
            timeout_s=self._timeout_s,
        )

    def tuya_client(self) -> TuyaClient:
        """A client that starts at the rate limit learned by earlier invocations."""
        from ..tuya import TuyaClient  # loaded by the functions that call Tuya only

        settings = self.tuya_settings()
        if self.rates is None:  # once per container: the learned rate is kept in memory
            self.rates = DynamoRateMemory(
                self._dynamodb,
                self._control_table,
                endpoint=settings.base_url,
                access_id=settings.access_id,
                share=self._rate_share,
            )
        try:
            known = self.rates.load()
        except (ClientError, BotoCoreError) as exc:  # a cache: start slowly instead
            logger.warning(f"could not read the learned rate limit: {exc}")
            known = None
        return TuyaClient(
            settings, token_store=self.tokens, transport=self._transport, known_rate_limit=known
        )

    def keep_learned_rate(self, client: TuyaClient) -> None:
        """Write the rate limit the client learned, when it changed (best effort)."""
        if self.rates is None:
            return
        try:
            if self.rates.save(client.learned_rate_limit):
                logger.info("learned Tuya's rate limit", extra={"rps": client.learned_rate_limit})
        except (ClientError, BotoCoreError) as exc:  # a cache: the batch's outcome matters more
            logger.warning(f"could not keep the learned rate limit: {exc}")


class SchedulerService(_TuyaUser):
    """Get the device IDs (configured, or every device of the project) and enqueue them."""

    def __init__(
        self,
        settings: SchedulerSettings,
        *,
        sqs: Any,
        dynamodb: Any,
        read_secret: SecretReader = powertools_secret,
        transport: Any = None,
    ) -> None:
        super().__init__(
            settings,
            qps=settings.tuya_qps,
            dynamodb=dynamodb,
            read_secret=read_secret,
            rate_share="scheduler",
            transport=transport,
        )
        self.settings = settings
        self.queue = SqsCheckQueue(sqs, settings.check_queue_url)

    def run(self, run_id: str | None = None) -> dict[str, Any]:
        """One scheduled run: returns ``{"run_id", "devices", "messages", "source"}``."""
        run_id = run_id or uuid.uuid4().hex[:12]
        logger.append_keys(run_id=run_id)
        device_ids = self.settings.configured_ids
        infos: dict[str, DeviceInfo] = {}
        source = "parameter"
        if not device_ids:
            source = "discovery"
            infos = asyncio.run(self._discover())
            device_ids = list(infos)
        messages = plan_messages(
            run_id, device_ids, per_message=self.settings.devices_per_message, infos=infos
        )
        self.queue.send(messages)
        metrics.add_metric(name="DevicesScheduled", unit=MetricUnit.Count, value=len(device_ids))
        logger.info("run scheduled", extra={"devices": len(device_ids), "messages": len(messages)})
        return {
            "run_id": run_id,
            "devices": len(device_ids),
            "messages": len(messages),
            "source": source,
        }

    async def _discover(self) -> dict[str, DeviceInfo]:
        infos: dict[str, DeviceInfo] = {}
        async with self.tuya_client() as tuya:
            try:
                async for device in tuya.list_devices():
                    try:
                        validate_device_id(device.device_id)
                    except InvalidDeviceIdError as exc:
                        # One odd entry in Tuya's list must not stop the whole fleet's run.
                        logger.warning(f"skipped a listed device: {exc}")
                        continue
                    infos[device.device_id] = DeviceInfo.from_summary(device)
            finally:
                self.keep_learned_rate(tuya)
        return infos


class CheckerService(_TuyaUser):
    """Check the devices of a batch of messages; retry or dead-letter what failed."""

    def __init__(
        self,
        settings: CheckerSettings,
        *,
        sqs: Any,
        dynamodb: Any,
        read_secret: SecretReader = powertools_secret,
        transport: Any = None,
    ) -> None:
        super().__init__(
            settings,
            # Tuya's ceiling is per project: each concurrent checker takes its share.
            qps=settings.qps_per_instance,
            dynamodb=dynamodb,
            read_secret=read_secret,
            rate_share=f"checker-of-{settings.checker_max_concurrency}",
            transport=transport,
        )
        self.settings = settings
        self.store = DynamoStateStore(dynamodb, settings.state_table)
        self.queue = SqsCheckQueue(
            sqs, settings.check_queue_url, dead_letter_url=settings.check_dead_letter_queue_url
        )
        self._tuya: TuyaClient | None = None
        self._tuya_loop: asyncio.AbstractEventLoop | None = None

    def handle(self, event: Mapping[str, Any], context: Any = None) -> PartialItemFailureResponse:
        """Process an SQS batch; failed records are reported, the rest are done."""
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
        try:
            return async_process_partial_response(
                event=dict(event),
                record_handler=self.check_record,
                processor=AsyncBatchProcessor(event_type=EventType.SQS),
                context=context,
            )
        finally:
            self._close_client(_BATCH.get())
            _BATCH.reset(mark)

    def _client(self) -> TuyaClient:
        # One client (one rate limiter, one set of connections) for every record of the batch,
        # created on the loop that runs them.
        if self._tuya is None:
            self._tuya = self.tuya_client()
            self._tuya_loop = asyncio.get_running_loop()
        return self._tuya

    def _close_client(self, batch: object) -> None:
        client, loop = self._tuya, self._tuya_loop
        self._tuya = self._tuya_loop = None
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
        self.keep_learned_rate(client)

    async def check_record(self, record: SQSRecord) -> dict[str, Any]:
        """One message: check its devices, write changes, re-queue transient failures."""
        message = CheckMessage.model_validate_json(record.body)
        logger.append_keys(run_id=message.run_id, message_id=record.message_id)
        try:
            outcome = await check_message(
                message,
                self._client(),
                self.store,
                max_attempts=self.settings.max_attempts,
                concurrency=self.settings.check_concurrency,
            )
        except TuyaFatalError as exc:
            # One clear line (the record fails and comes back; the alarms take it from there).
            logger.error(f"stopped: {exc}", extra={"code": exc.code, "tid": exc.tid})
            raise
        if outcome.retry:
            retry = message.model_copy(
                update={"device_ids": tuple(outcome.retry), "attempt": message.attempt + 1}
            )
            delay = min(900, self.settings.retry_delay_s * 2 ** (message.attempt - 1))
            self.queue.send([retry], delay_s=delay)
        if outcome.gave_up:
            self.queue.dead_letter(
                message,
                {device_id: error.as_dict() for device_id, error in outcome.gave_up.items()},
            )
            logger.error("devices gave up", extra={"devices": sorted(outcome.gave_up)})
        metrics.add_metric(name="DevicesChecked", unit=MetricUnit.Count, value=outcome.checked)
        metrics.add_metric(
            name="UpdatesFound", unit=MetricUnit.Count, value=outcome.updates_available
        )
        for error in [*outcome.device_errors.values(), *outcome.gave_up.values()]:
            metrics.add_metric(
                name=f"TuyaError{error.code or 'Other'}", unit=MetricUnit.Count, value=1
            )
        return {
            "checked": outcome.checked,
            "written": outcome.written,
            "retry": outcome.retry,
            "gave_up": sorted(outcome.gave_up),
        }


class DifferService:
    """Turn a batch of state changes from the table's stream into published news."""

    def __init__(self, settings: DifferSettings, *, sns: Any, dynamodb: Any) -> None:
        self.settings = settings
        self.ledger = DynamoNewsLedger(dynamodb, settings.control_table)
        self.publisher = SnsPublisher(sns, settings.topic_arn)

    def handle(self, event: Mapping[str, Any]) -> dict[str, list[dict[str, str]]]:
        """Publish the batch's news; on failure, report the first record to retry from.

        The stream retries from the lowest reported sequence number; news published before
        the failure is in the ledger, so the retry does not publish it again.
        """
        records = event.get("Records", [])
        changes = []
        sequence_of: dict[tuple[str, int], str] = {}
        for record in records:
            if record.get("eventName") == "REMOVE":
                continue
            data = record.get("dynamodb", {})
            try:
                new = state_from_image(data.get("NewImage"))
                old = state_from_image(data.get("OldImage"))
            except StateImageError as exc:
                # One unreadable item must not block the shard: say so, and go on.
                logger.error(f"skipped a stream record: {exc}", extra={"keys": data.get("Keys")})
                continue
            if new is None:
                continue
            changes.append((old, new))
            sequence_of.setdefault(new.key, data.get("SequenceNumber", ""))
        events = news_from_changes(changes, notify_first_seen=self.settings.notify_on_first_seen)
        outcome = publish_news(events, self.ledger, self.publisher)
        for group in outcome.published:
            metrics.add_metric(name="NotificationsPublished", unit=MetricUnit.Count, value=1)
            logger.info(
                "published",
                extra={
                    "event": group.type.value,
                    "version": group.version,
                    "devices": group.device_count,
                },
            )
        if not outcome.failed:
            return {"batchItemFailures": []}
        logger.error("publishing failed", extra={"errors": outcome.errors})
        first = min(
            (sequence_of[(e.device_id, e.channel)] for e in outcome.failed),
            key=lambda sequence: int(sequence) if sequence.isdigit() else 0,
        )
        return {"batchItemFailures": [{"itemIdentifier": first}]}


class SlackService:
    """Post each notification of the topic to Slack."""

    def __init__(
        self,
        settings: SlackSettings,
        *,
        read_secret: SecretReader = powertools_secret,
        transport: Any = None,
        max_wait_s: float = 30.0,
    ) -> None:
        self.settings = settings
        self._read_secret = read_secret
        self._transport = transport
        self._max_wait_s = max_wait_s

    def handle(self, event: Mapping[str, Any]) -> dict[str, int]:
        """Post every SNS record; raise on failure so that SNS retries the delivery."""
        url = self._read_secret(self.settings.slack_webhook_secret_name)
        if isinstance(url, dict):
            url = url.get("webhook_url") or url.get("url")
        from ..notify.slack import SlackNotifier

        notifier = SlackNotifier(str(url), transport=self._transport, max_wait_s=self._max_wait_s)
        posted = 0
        for record in event.get("Records", []):
            body = json.loads(record["Sns"]["Message"])
            asyncio.run(notifier.send(group_from_json(body)))
            posted += 1
        return {"posted": posted}
