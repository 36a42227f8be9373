"""The scheduler's service: the run's devices (configured, or discovered) onto the queue."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from ..cycle import discover
from ..messages import CheckMessage
from ..state import DeviceInfo
from .observability import logger, metrics
from .queue_sqs import SqsCheckQueue
from .runtime import run_async
from .secrets import SecretReader, powertools_secret
from .settings import SchedulerSettings
from .tuya_access import TuyaAccess

__all__ = ["CheckQueue", "SchedulerService"]


class CheckQueue(Protocol):
    """Where check messages go (SQS)."""

    def send(self, messages: list[CheckMessage], *, delay_s: int = 0) -> int:
        """Send the messages; returns the requests made."""
        ...


class SchedulerService:
    """Get the device IDs (configured, or every device of the project) and enqueue them."""

    def __init__(self, settings: SchedulerSettings, *, queue: CheckQueue, tuya: TuyaAccess) -> None:
        self.settings = settings
        self.queue = queue
        self.tuya = tuya

    @classmethod
    def from_clients(
        cls,
        settings: SchedulerSettings,
        *,
        sqs: Any,
        dynamodb: Any,
        read_secret: SecretReader = powertools_secret,
        transport: Any = None,
    ) -> SchedulerService:
        """The service over boto3 clients (and, in tests, an HTTP transport for Tuya)."""
        return cls(
            settings,
            queue=SqsCheckQueue(sqs, settings.check_queue_url),
            tuya=TuyaAccess(
                settings,
                qps=settings.tuya_qps,
                dynamodb=dynamodb,
                rate_share="scheduler",
                read_secret=read_secret,
                transport=transport,
            ),
        )

    def run(self, run_id: str | None = None) -> dict[str, Any]:
        """One scheduled run: returns ``{"run_id", "devices", "messages", "source"}``."""
        run_id = run_id or uuid.uuid4().hex[:12]
        logger.append_keys(run_id=run_id)
        device_ids = self.settings.configured_ids
        infos: dict[str, DeviceInfo] = {}
        source = "parameter"
        if not device_ids:
            source = "discovery"
            infos = run_async(self._discover())
            device_ids = list(infos)
        messages = CheckMessage.plan(
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
        async with self.tuya.client() as client:
            try:
                return {device_id: info async for device_id, info in discover(client)}
            finally:
                self.tuya.keep_learned_rate(client)
