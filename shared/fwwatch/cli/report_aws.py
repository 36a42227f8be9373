"""``fwwatch report --aws-table``: the fleet report from the AWS stack's state table.

Read with the caller's AWS credentials (boto3's usual chain: AWS_PROFILE, the access key
variables, SSO, an instance role) by Scan of that one table: nothing is written, no other
table or service is called. Each failure says what to fix.
"""

from __future__ import annotations

from ..fleet_report import FleetReport, build_fleet_report
from .common import UsageError

__all__ = ["TableUnreadableError", "aws_fleet_report"]


class TableUnreadableError(Exception):
    """The table could not be read for a reason that may pass (throttling, the network)."""


#: Error codes that are the caller's to fix: who they are, or what they may do.
_ACCESS_CODES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "MissingAuthenticationTokenException",
    }
)


def aws_fleet_report(table: str, region: str | None) -> FleetReport:
    """Scan ``table`` in ``region`` (default: the AWS configuration's) into a report."""
    try:
        import boto3
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            NoCredentialsError,
            NoRegionError,
        )

        from ..aws.store_dynamodb import DynamoStateStore, StateImageError
    except ImportError:
        raise UsageError(
            "--aws-table needs boto3: install fwwatch with its AWS extra "
            "(pip install 'fwwatch[aws]')"
        ) from None
    try:
        client = boto3.client("dynamodb", region_name=region)
    except NoRegionError:
        raise UsageError("no AWS region: give --aws-region R, or set AWS_REGION") from None
    where = client.meta.region_name
    try:
        states = list(DynamoStateStore(client, table).scan())
    except NoCredentialsError:
        raise UsageError(
            "no AWS credentials found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY), or log in with `aws sso login`"
        ) from None
    except StateImageError:
        raise UsageError(
            f"the table {table} holds items that are not channel states: give the stack's "
            "StateTableName output (`sam list stack-outputs`)"
        ) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")) or code
        if code == "ResourceNotFoundException":
            raise UsageError(
                f"no table {table} in {where}: give the stack's StateTableName output "
                "(`sam list stack-outputs`) and its region (--aws-region)"
            ) from None
        if code in _ACCESS_CODES:
            raise UsageError(
                f"AWS refused to let these credentials scan {table} ({code}: {message}); "
                "the report needs dynamodb:Scan on that table"
            ) from None
        raise TableUnreadableError(
            f"could not read {table} in {where}: {code}: {message}"
        ) from None
    except BotoCoreError as exc:
        raise TableUnreadableError(f"could not read {table} in {where}: {exc}") from None
    return build_fleet_report(states, mode="aws", source=f"AWS table {table} ({where})")
