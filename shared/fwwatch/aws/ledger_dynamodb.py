"""Which news was already published, kept in the control table (with a TTL)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .dynamo import batch_get, batch_write

__all__ = ["DynamoNewsLedger"]

KEEP_S = 400 * 86400  # a year and a bit: the same version is not news again within it


class DynamoNewsLedger:
    """A :class:`~fwwatch.pipeline.NewsLedger` over the control table."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def published(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        items = batch_get(self._client, self._table, [{"pk": f"news#{key}"} for key in keys])
        return {str(item["pk"]).removeprefix("news#") for item in items}

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
