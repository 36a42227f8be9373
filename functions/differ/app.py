"""Differ: turn the state table's stream into each run's news, kept for the run's digest."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from fwwatch.aws.differ import DifferService
from fwwatch.aws.observability import logger, metrics
from fwwatch.aws.settings import DifferSettings

_service: DifferService | None = None


def service() -> DifferService:
    """Built once per container, on first use."""
    global _service
    if _service is None:
        _service = DifferService.from_clients(
            DifferSettings.load(), sqs=boto3.client("sqs"), dynamodb=boto3.client("dynamodb")
        )
    return _service


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(
    event: dict[str, Any], context: LambdaContext, differ: DifferService | None = None
) -> dict[str, list[dict[str, str]]]:
    """Stream batch -> news kept per run -> the record to retry from, if any."""
    return (differ or service()).handle(event)
