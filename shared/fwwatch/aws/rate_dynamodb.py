"""The rate limit the stack learned from Tuya, kept in the control table between runs.

Each function keeps its own share: the scheduler lists devices (one API, its own limit) and
each of the checker's concurrent instances checks firmware at a share of the project's
ceiling. An instance starts at the rate its predecessors learned instead of slow-starting,
and writes it back only when it changed, so an ordinary run costs one read per container.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from .dynamo import from_dynamo, to_dynamo

__all__ = ["DynamoRateMemory"]

#: A learned rate that moved less than this is not written again.
SIGNIFICANT_CHANGE = 0.02


class DynamoRateMemory:
    """The learned rate limit of one (endpoint, Access ID, share) in one control-table item."""

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        endpoint: str,
        access_id: str,
        share: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._table = table
        # The Access ID is not a secret, but it need not be readable in a key either.
        owner = hashlib.sha256(f"{endpoint} {access_id}".encode()).hexdigest()[:16]
        self._key = f"rate#{owner}#{share}"
        self._clock = clock
        self._loaded = False
        self._known: float | None = None

    @property
    def key(self) -> str:
        """The item's key (``pk``) in the control table."""
        return self._key

    def load(self) -> float | None:
        """The learned limit (read once per container, then from memory)."""
        if not self._loaded:
            answer = self._client.get_item(
                TableName=self._table, Key=to_dynamo({"pk": self._key}), ConsistentRead=False
            )
            self.prime(from_dynamo(answer.get("Item", {})))
        return self._known

    def prime(self, item: dict[str, Any] | None) -> None:
        """Take the item as read by someone else (one request for the token and the rate)."""
        rps = (item or {}).get("rps")
        self._known = float(rps) if isinstance(rps, int | float) and rps > 0 else None
        self._loaded = True

    def save(self, learned: float | None) -> bool:
        """Keep a newly learned limit; ``True`` when it was written."""
        if learned is None or learned <= 0:
            return False
        known = self._known
        if known is not None and abs(learned - known) <= SIGNIFICANT_CHANGE * known:
            return False
        self._client.update_item(
            TableName=self._table,
            Key=to_dynamo({"pk": self._key}),
            UpdateExpression="SET rps = :rps, learned_at = :now",
            ExpressionAttributeValues=to_dynamo(
                {":rps": Decimal(str(round(learned, 3))), ":now": int(self._clock())}
            ),
        )
        self._known = learned
        self._loaded = True
        return True
