"""One Tuya token for every container, kept in a DynamoDB item and renewed under a lease.

Tuya keeps one live token per Access ID: a grant in one container kills the token of every
other. So containers share the token through one item, and only the holder of a lease (a
conditional write) asks Tuya for a new one; the others wait and read what it stored. A
container that meets a rejected token first re-reads the item: someone else may already
have renewed it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from ..tuya.tokens import Renew, Token
from .dynamo import from_dynamo, to_dynamo

__all__ = ["DynamoTokenStore"]

logger = logging.getLogger("fwwatch.aws.token")


class DynamoTokenStore:
    """A :class:`~fwwatch.tuya.tokens.TokenStore` shared by every container of the stack."""

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        key: str = "tuya-token",
        lease_s: float = 20.0,
        wait_s: float = 30.0,
        poll_s: float = 0.25,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._table = table
        self._key = key
        self._lease_s = lease_s
        self._wait_s = wait_s
        self._poll_s = poll_s
        self._clock = clock
        self._owner = uuid.uuid4().hex
        self._cached: Token | None = None
        # Lambda may run each invocation on a new event loop; a lock belongs to one loop.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self.reads = 0
        self.renewals = 0

    def __repr__(self) -> str:
        return f"DynamoTokenStore(table={self._table!r}, key={self._key!r})"

    def _lock(self) -> asyncio.Lock:
        return self._locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())

    async def load(self) -> Token | None:
        # Every request asks for the token: serve it from memory, and let only one of the
        # requests that start together read the item.
        if self._cached is None:
            async with self._lock():
                if self._cached is None:
                    self._cached = await asyncio.to_thread(self._read)
        return self._cached

    async def replace(self, stale: Token | None, renew: Renew) -> Token:
        async with self._lock():
            if self._cached is not None and not _same(self._cached, stale):
                return self._cached
            deadline = self._clock() + self._wait_s
            while True:
                stored = await asyncio.to_thread(self._read)
                if stored is not None and not _same(stored, stale):
                    # Another container renewed it while ours was failing: use theirs.
                    self._cached = stored
                    return stored
                if await asyncio.to_thread(self._take_lease):
                    break
                if self._clock() > deadline:
                    raise TimeoutError("waited too long for another container to renew the token")
                await asyncio.sleep(self._poll_s)
            try:
                token = await renew(stored)
                await asyncio.to_thread(self._store, token)
            finally:
                await asyncio.to_thread(self._release_lease)
            self.renewals += 1
            self._cached = token
            return token

    # ------------------------------------------------------------------ DynamoDB

    def _read(self) -> Token | None:
        self.reads += 1
        answer = self._client.get_item(
            TableName=self._table, Key=to_dynamo({"pk": self._key}), ConsistentRead=True
        )
        item = from_dynamo(answer.get("Item", {}))
        if not item.get("access_token"):
            return None
        return Token(
            access_token=str(item["access_token"]),
            refresh_token=str(item.get("refresh_token", "")),
            expires_at=float(item.get("token_expires_at", 0)),
            uid=str(item.get("uid", "")),
        )

    def _take_lease(self) -> bool:
        now = self._clock()
        try:
            self._client.update_item(
                TableName=self._table,
                Key=to_dynamo({"pk": self._key}),
                UpdateExpression="SET lease_owner = :me, lease_until = :until",
                ConditionExpression="attribute_not_exists(lease_until) OR lease_until < :now",
                ExpressionAttributeValues=to_dynamo(
                    {":me": self._owner, ":until": int(now + self._lease_s), ":now": int(now)}
                ),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _store(self, token: Token) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=to_dynamo({"pk": self._key}),
            UpdateExpression=(
                "SET access_token = :a, refresh_token = :r, token_expires_at = :e, uid = :u, "
                "expires_at = :ttl"
            ),
            ExpressionAttributeValues=to_dynamo(
                {
                    ":a": token.access_token,
                    ":r": token.refresh_token,
                    ":e": int(token.expires_at),
                    ":u": token.uid,
                    # The table's TTL removes a token nobody renewed for a day.
                    ":ttl": int(token.expires_at) + 86400,
                }
            ),
        )

    def _release_lease(self) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=to_dynamo({"pk": self._key}),
                UpdateExpression="REMOVE lease_owner, lease_until",
                ConditionExpression="lease_owner = :me",
                ExpressionAttributeValues=to_dynamo({":me": self._owner}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            logger.warning("the token lease expired before the renewal finished")


def _same(token: Token, other: Token | None) -> bool:
    return other is not None and token.access_token == other.access_token
