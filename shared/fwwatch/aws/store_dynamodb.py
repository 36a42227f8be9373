"""Channel states in DynamoDB: one item per device and channel (a ``StateReader`` and more)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from ..state import ChannelKey, ChannelState
from .dynamo import batch_get, batch_write, from_dynamo

__all__ = ["DynamoStateStore", "StateImageError", "state_from_image"]


class StateImageError(ValueError):
    """A stream image that is not a channel state."""


class DynamoStateStore:
    """Reads by exact keys in batches of 100, writes in batches of 25."""

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

    def put_items(self, states: Sequence[ChannelState]) -> None:
        batch_write(self._client, self.table, (state.to_item() for state in states))


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
