"""Checker: check the devices of an SQS batch and write only what changed."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from fwwatch.aws.checker import CheckerService
from fwwatch.aws.observability import logger, metrics
from fwwatch.aws.settings import CheckerSettings

_service: CheckerService | None = None


def service() -> CheckerService:
    """Built once per container, on first use (the shared token is cached with it)."""
    global _service
    if _service is None:
        _service = CheckerService.from_clients(
            CheckerSettings.load(), sqs=boto3.client("sqs"), dynamodb=boto3.client("dynamodb")
        )
    return _service


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(
    event: dict[str, Any], context: LambdaContext, checker: CheckerService | None = None
) -> PartialItemFailureResponse:
    """SQS batch -> checks -> the records that failed (the rest are deleted)."""
    return (checker or service()).handle(event, context)
