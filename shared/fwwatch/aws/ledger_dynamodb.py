"""Which news was already published, kept in the control table (with a TTL)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..events import NEWS_DEDUPE_WINDOW
from .dynamo import batch_get, batch_write

__all__ = ["DynamoNewsLedger"]

KEEP_S = int(NEWS_DEDUPE_WINDOW.total_seconds())


class DynamoNewsLedger:
    """A :class:`~fwwatch.news.NewsLedger` over the control table (items expire by TTL)."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def published(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        items = batch_get(self._client, self._table, [{"pk": f"news#{key}"} for key in keys])
        # DynamoDB deletes expired items within days, not at once: an expired one is forgotten.
        now = int(time.time())
        return {
            str(item["pk"]).removeprefix("news#")
            for item in items
            if int(item.get("expires_at", now + 1)) > now
        }

    def record(self, keys: Sequence[str]) -> None:
        now = int(time.time())
        batch_write(
            self._client,
            self._table,
            (
                {"pk": f"news#{key}", "published_at": now, "expires_at": now + KEEP_S}
                for key in keys
            ),
        )
