"""Small helpers over the DynamoDB client: typed items, batched reads and writes with retries."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

__all__ = ["batch_get", "batch_write", "from_dynamo", "to_dynamo"]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25


def to_dynamo(item: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict as DynamoDB's typed attribute values."""
    return {key: _serializer.serialize(value) for key, value in item.items() if value is not None}


def from_dynamo(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB's typed attribute values as a plain dict (integral numbers as int)."""
    return {key: _plain(_deserializer.deserialize(value)) for key, value in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_plain(inner) for inner in value]
    return value


def batch_get(
    client: Any,
    table: str,
    keys: Sequence[Mapping[str, Any]],
    *,
    attempts: int = 8,
    consistent: bool = False,
) -> list[dict[str, Any]]:
    """BatchGetItem over any number of keys (100 per call), retrying unprocessed keys."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            "Keys": [to_dynamo(key) for key in keys[start : start + BATCH_GET_LIMIT]]
        }
        if consistent:
            request["ConsistentRead"] = True
        pending: dict[str, Any] = {table: request}
        for attempt in range(attempts):
            answer = client.batch_get_item(RequestItems=pending)
            found += [from_dynamo(item) for item in answer.get("Responses", {}).get(table, [])]
            pending = answer.get("UnprocessedKeys") or {}
            if not pending:
                break
            time.sleep(min(0.05 * 2**attempt, 2.0))
        else:
            raise RuntimeError(f"DynamoDB left keys of {table} unread after {attempts} attempts")
    return found


def batch_write(
    client: Any, table: str, items: Iterable[Mapping[str, Any]], *, attempts: int = 8
) -> None:
    """BatchWriteItem puts (25 per call), retrying unprocessed items with backoff."""
    requests = [{"PutRequest": {"Item": to_dynamo(item)}} for item in items]
    for start in range(0, len(requests), BATCH_WRITE_LIMIT):
        pending: dict[str, Any] = {table: requests[start : start + BATCH_WRITE_LIMIT]}
        for attempt in range(attempts):
            answer = client.batch_write_item(RequestItems=pending)
            pending = answer.get("UnprocessedItems") or {}
            if not pending:
                break
            time.sleep(min(0.05 * 2**attempt, 2.0))
        else:
            raise RuntimeError(
                f"DynamoDB left items of {table} unwritten after {attempts} attempts"
            )
