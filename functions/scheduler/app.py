"""Scheduler: on each schedule, fan the fleet's device IDs out to the check queue as they are
listed; on each message of the listing queue, go on listing a run where its last step
stopped."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from fwwatch.aws.observability import logger, metrics
from fwwatch.aws.scheduler import SchedulerService
from fwwatch.aws.settings import SchedulerSettings

_service: SchedulerService | None = None


def service() -> SchedulerService:
    """Built once per container, on first use."""
    global _service
    if _service is None:
        _service = SchedulerService.from_clients(
            SchedulerSettings.load(), sqs=boto3.client("sqs"), dynamodb=boto3.client("dynamodb")
        )
    return _service


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(
    event: dict[str, Any], context: LambdaContext, scheduler: SchedulerService | None = None
) -> dict[str, Any]:
    """EventBridge Scheduler's event (or the listing queue's) -> one step of a run's listing
    -> what was enqueued."""
    return (scheduler or service()).handle(event, context)
