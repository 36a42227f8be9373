"""Slack: post each notification of the topic to a Slack incoming webhook."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from fwwatch.aws.observability import logger, metrics
from fwwatch.aws.settings import SlackSettings
from fwwatch.aws.slack import SlackService

_service: SlackService | None = None


def service() -> SlackService:
    """Built once per container, on first use."""
    global _service
    if _service is None:
        _service = SlackService(SlackSettings.load())
    return _service


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(
    event: dict[str, Any], context: LambdaContext, slack: SlackService | None = None
) -> dict[str, int]:
    """SNS records -> Slack posts (an exception makes Lambda invoke again; a post that may
    have been delivered is logged as an error instead)."""
    return (slack or service()).handle(event)
