"""Digest: publish each run's news, one message per release (and follow-ups for late news)."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from fwwatch.aws.digest import DigestService
from fwwatch.aws.observability import logger, metrics
from fwwatch.aws.settings import DigestSettings

_service: DigestService | None = None


def service() -> DigestService:
    """Built once per container, on first use."""
    global _service
    if _service is None:
        _service = DigestService.from_clients(
            DigestSettings.load(),
            sns=boto3.client("sns"),
            sqs=boto3.client("sqs"),
            dynamodb=boto3.client("dynamodb"),
        )
    return _service


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(
    event: dict[str, Any], context: LambdaContext, digest: DigestService | None = None
) -> PartialItemFailureResponse:
    """SQS batch of digest requests -> news published -> the records that failed."""
    return (digest or service()).handle(event, context)
