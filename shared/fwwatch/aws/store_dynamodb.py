"""Channel states in DynamoDB: one item per device and channel (a ``StateReader`` and more)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from ..state import ChannelKey, ChannelState, order_key
from .dynamo import batch_get, from_dynamo, to_dynamo

__all__ = ["DynamoStateStore", "StateImageError", "state_from_image"]


class StateImageError(ValueError):
    """A stream image that is not a channel state."""


class DynamoStateStore:
    """Reads by exact keys in batches of 100; writes each changed item on a condition."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self.table = table

    def get_items(self, keys: Iterable[ChannelKey]) -> dict[ChannelKey, ChannelState]:
        unique = list(dict.fromkeys(keys))
        items = batch_get(
            self._client,
            self.table,
            [{"device_id": device_id, "channel": channel} for device_id, channel in unique],
        )
        states = (ChannelState.from_item(item) for item in items)
        return {state.key: state for state in states}

    def scan(self) -> Iterator[ChannelState]:
        """Every state in the table, page by page (Scan: the fleet report reads the whole
        table, and needs no other permission than ``dynamodb:Scan`` on it).

        Raises :class:`StateImageError` for an item that is not a channel state.
        """
        request: dict[str, Any] = {"TableName": self.table}
        while True:
            page = self._client.scan(**request)
            for item in page.get("Items", []):
                state = state_from_image(item)
                if state is not None:
                    yield state
            if not page.get("LastEvaluatedKey"):
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def put_items(self, states: Sequence[ChannelState]) -> list[ChannelKey]:
        """Write states in observation order; returns the keys refused as stale.

        Each item carries ``observed_us`` and is put on condition that the stored one was
        observed earlier, so a slower, overlapping check never rewrites history (the stream
        then has no record of it, and no news). Conditions need PutItem, one item a call:
        only changed states are ever written, so an unchanged fleet still costs nothing.
        """
        refused: list[ChannelKey] = []
        for state in states:
            observed = order_key(state.last_changed)
            try:
                self._client.put_item(
                    TableName=self.table,
                    Item=to_dynamo({**state.to_item(), "observed_us": observed}),
                    ConditionExpression="attribute_not_exists(observed_us) OR observed_us < :t",
                    ExpressionAttributeValues={":t": {"N": str(observed)}},
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                refused.append(state.key)
        return refused


def state_from_image(image: Mapping[str, Any] | None) -> ChannelState | None:
    """A stream record's OldImage/NewImage (DynamoDB JSON) as a state.

    Raises :class:`StateImageError` for an image that is not a channel state.
    """
    if not image:
        return None
    try:
        return ChannelState.from_item(from_dynamo(image))
    except (ValidationError, TypeError, AttributeError, ArithmeticError, KeyError) as exc:
        kind = type(exc).__name__
        raise StateImageError(f"a stream image that is not a channel state ({kind})") from None
