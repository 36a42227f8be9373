"""The table's stream, read: DynamoDB stream records as state changes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..state import ChannelKey, StateChange
from .observability import logger
from .store_dynamodb import StateImageError, state_from_image

__all__ = ["StreamBatch", "read_stream"]


@dataclass
class StreamBatch:
    """The changes of a stream batch, and where each item's first record sits."""

    changes: list[StateChange] = field(default_factory=list)
    sequence_of: dict[ChannelKey, str] = field(default_factory=dict)

    def first_sequence(self, keys: Iterable[ChannelKey]) -> str:
        """The lowest sequence number among these items' records (the stream retries from it)."""
        return min(
            (self.sequence_of[key] for key in keys),
            key=lambda sequence: int(sequence) if sequence.isdigit() else 0,
        )


def read_stream(records: Iterable[Mapping[str, Any]]) -> StreamBatch:
    """The (old, new) state pairs of inserts and modifications; removals are no news.

    An unreadable image is logged and skipped: one odd item must not block the shard.
    """
    batch = StreamBatch()
    for record in records:
        if record.get("eventName") == "REMOVE":
            continue
        data = record.get("dynamodb", {})
        try:
            new = state_from_image(data.get("NewImage"))
            old = state_from_image(data.get("OldImage"))
        except StateImageError as exc:
            logger.error(f"skipped a stream record: {exc}", extra={"keys": data.get("Keys")})
            continue
        if new is None:
            continue
        batch.changes.append((old, new))
        batch.sequence_of.setdefault(new.key, str(data.get("SequenceNumber", "")))
    return batch
