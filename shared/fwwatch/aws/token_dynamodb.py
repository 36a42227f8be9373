"""One Tuya token for every container, kept in a DynamoDB item and renewed under a lease.

Tuya keeps one live token per Access ID: a grant in one container kills the token of every
other. So containers share the token through one item, and only the holder of a lease (a
conditional write) asks Tuya for a new one; the others wait and read what it stored. A
container that meets a rejected token first re-reads the item: someone else may already
have renewed it.

An uncontended renewal is two requests. The lease is taken by one conditional UpdateItem
that holds only while the item still has the token the caller found stale, no other lease
is live and no shared backoff is pending; it returns the item, so the renewal refreshes the
stored token itself. The new token is written and the lease released by a second
UpdateItem, on condition that the lease is still ours. Only when the lease is refused is
the item read, to learn why: a newer token (used), a pending failure (shared), another
container's renewal (waited for), or this container's own lease (its UpdateItem went
through, and botocore sent it again when the answer was lost: the renewal goes on).

A renewal that fails is shared too: the container that tried writes when the next attempt
may be made (a backoff that grows with each failure in a row) and why it failed; until
then every other container gets the same failure at once instead of a grant of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..tuya.errors import TuyaError, TuyaFatalError, TuyaTransientError
from ..tuya.tokens import Renew, Token
from .dynamo import from_dynamo, to_dynamo

__all__ = ["DynamoTokenStore"]

logger = logging.getLogger("fwwatch.aws.token")


class DynamoTokenStore:
    """A :class:`~fwwatch.tuya.tokens.TokenStore` shared by every container of the stack.

    ``reads`` counts the item's reads (a GetItem, or an item primed from a read of someone
    else's); the item a lease returns is not one. ``renewals`` counts the renewals this
    store made under its lease.
    """

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        key: str = "tuya-token",
        lease_s: float = 60.0,
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
        self._failure: tuple[float, str] | None = None
        self._failures_in_a_row = 0
        self._lease_is_mine = False  # the item, as last read, holds this store's live lease

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
                    self._cached = await self._db(self._read)
        return self._cached

    async def _db[R](self, operation: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run a DynamoDB call off the loop; its failures are transient for the caller."""
        try:
            return await asyncio.to_thread(operation, *args, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else ""
            raise TuyaTransientError(
                f"the shared token store failed ({code or type(exc).__name__})"
            ) from None

    async def replace(self, stale: Token | None, renew: Renew) -> Token:
        async with self._lock():
            if self._cached is not None and not _same(self._cached, stale):
                return self._cached
            outcome = await self._lease_or_newer(stale)
            if isinstance(outcome, Token):
                # Another container renewed it since this one read it: use theirs.
                self._cached = outcome
                return outcome
            stored = outcome.stored
            try:
                token = await renew(stored)
            except TuyaFatalError:
                await self._db(self._release_lease)
                raise
            except TuyaError as exc:
                await self._db(self._release_lease, failure=exc)
                raise
            except BaseException:
                await self._db(self._release_lease)
                raise
            try:
                stored_ours = await self._db(self._store, token)
            except BaseException:
                # The write may not have been made: free the lease rather than make every
                # other container wait it out; the write's failure is the one to report.
                with contextlib.suppress(TuyaTransientError):
                    await self._db(self._release_lease)
                raise
            if not stored_ours:
                # Our lease ran out and another container took it: its token is current
                # once stored. Until then the item holds the stale one, which Tuya refused:
                # ours is the better bet (if the other's grant revokes it, the next call
                # is refused and finds theirs).
                current = await self._db(self._read)
                if current is not None and not _same(current, stale):
                    token = current
            self.renewals += 1
            self._cached = token
            return token

    async def _lease_or_newer(self, stale: Token | None) -> _Leased | Token:
        """Our lease on the item, or the newer token another container stored."""
        deadline = self._clock() + self._wait_s
        expected = stale
        while True:
            leased = await self._db(self._take_lease, expected)
            if leased is not None:
                # The item as the lease left it: the stale token, and its refresh token.
                return _Leased(self._accept(leased))
            # Refused: a newer token, a pending shared failure, or another container's lease.
            stored = await self._db(self._read)
            if stored is not None and not _same(stored, expected):
                return stored
            if self._lease_is_mine:
                # Our lease went through and was sent again (botocore retries a call whose
                # answer was lost): the copy was refused by our own lease.
                return _Leased(stored)
            self._raise_shared_failure()
            if stored is None and expected is not None:
                # The item lost its token (the table's TTL removes one left for a day): the
                # lease is taken for a first grant.
                expected = None
                continue
            if self._clock() > deadline:
                raise TuyaTransientError(
                    f"waited {self._wait_s:.0f} s for another container to renew the token"
                )
            await asyncio.sleep(self._poll_s)

    def _raise_shared_failure(self) -> None:
        """Another container's renewal failed a moment ago: share its outcome, try later."""
        failed = self._failure
        if failed is None:
            return
        retry_at, message = failed
        if self._clock() < retry_at:
            wait = retry_at - self._clock()
            raise TuyaTransientError(
                f"the token renewal failed ({message}); the next try is in {wait:.1f} s",
                retry_after_s=wait,
            )

    # ------------------------------------------------------------------ DynamoDB

    @property
    def key(self) -> str:
        """The item's key (``pk``) in the control table."""
        return self._key

    def prime(self, item: dict[str, Any] | None) -> None:
        """Take the item as read by someone else (a consistent read of the same key).

        A new container reads its token and its learned rate in one request; once a token is
        held, the item is read again only when the token is rejected.
        """
        if self._cached is None:
            self.reads += 1
            self._cached = self._accept(item or {})

    def _read(self) -> Token | None:
        self.reads += 1
        answer = self._client.get_item(
            TableName=self._table, Key=to_dynamo({"pk": self._key}), ConsistentRead=True
        )
        return self._accept(from_dynamo(answer.get("Item", {})))

    def _accept(self, item: dict[str, Any]) -> Token | None:
        retry_at = item.get("renew_retry_at")
        if isinstance(retry_at, int | float):
            self._failure = (float(retry_at), str(item.get("renew_error", "unknown")))
            self._failures_in_a_row = int(item.get("renew_failures", 1))
        else:
            self._failure = None
            self._failures_in_a_row = 0
        lease_until = item.get("lease_until")
        self._lease_is_mine = (
            item.get("lease_owner") == self._owner
            and isinstance(lease_until, int | float)
            and lease_until >= int(self._clock())
        )
        if not item.get("access_token"):
            return None
        return Token(
            access_token=str(item["access_token"]),
            refresh_token=str(item.get("refresh_token", "")),
            expires_at=float(item.get("token_expires_at", 0)),
            uid=str(item.get("uid", "")),
        )

    def _take_lease(self, stale: Token | None) -> dict[str, Any] | None:
        """Take the lease if the item still holds ``stale``: the item after, or ``None``."""
        now = self._clock()
        values: dict[str, Any] = {
            ":me": self._owner,
            ":until": int(now + self._lease_s),
            ":now": int(now),
            # Rounded down: the condition never lets a renewal in before the shared backoff
            # is over by the caller's clock.
            ":now_ms": Decimal(math.floor(now * 1000)) / 1000,
        }
        if stale is None:
            still_stale = "attribute_not_exists(access_token)"
        else:
            still_stale = "access_token = :stale"
            values[":stale"] = stale.access_token
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key=to_dynamo({"pk": self._key}),
                UpdateExpression="SET lease_owner = :me, lease_until = :until",
                ConditionExpression=(
                    f"{still_stale}"
                    " AND (attribute_not_exists(lease_until) OR lease_until < :now)"
                    " AND (attribute_not_exists(renew_retry_at) OR renew_retry_at <= :now_ms)"
                ),
                ExpressionAttributeValues=to_dynamo(values),
                # The item comes back with the lease: the token to refresh and the failures in
                # a row so far, without a read of its own.
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return from_dynamo(answer.get("Attributes", {}))

    def _store(self, token: Token) -> bool:
        """Write the new token and release the lease; ``False`` if the lease was lost."""
        try:
            self._write_token_and_release(token)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                logger.warning(
                    "the token lease ran out during the renewal; another container took it"
                )
                return False
            raise
        # The write cleared the item's failures: the next failure is the first in a row.
        self._failure = None
        self._failures_in_a_row = 0
        return True

    def _write_token_and_release(self, token: Token) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=to_dynamo({"pk": self._key}),
            ConditionExpression="lease_owner = :me",
            UpdateExpression=(
                "SET access_token = :a, refresh_token = :r, token_expires_at = :e, uid = :u, "
                "expires_at = :ttl "
                "REMOVE lease_owner, lease_until, renew_retry_at, renew_error, renew_failures"
            ),
            ExpressionAttributeValues=to_dynamo(
                {
                    ":a": token.access_token,
                    ":r": token.refresh_token,
                    ":e": int(token.expires_at),
                    ":u": token.uid,
                    # The table's TTL removes a token nobody renewed for a day.
                    ":ttl": int(token.expires_at) + 86400,
                    ":me": self._owner,
                }
            ),
        )

    def _release_lease(self, failure: TuyaError | None = None) -> None:
        values: dict[str, Any] = {":me": self._owner}
        update = "REMOVE lease_owner, lease_until"
        if failure is not None:
            # Every container waits for the same next step: one grant attempt per step.
            failures = self._failures_in_a_row + 1
            step = min(30.0, 0.5 * 2 ** min(failures - 1, 10))
            retry_at = self._clock() + random.uniform(step / 2, step)
            self._failure = (retry_at, failure.msg[:300])
            self._failures_in_a_row = failures
            update = (
                "SET renew_retry_at = :at, renew_error = :why, renew_failures = :n "
                "REMOVE lease_owner, lease_until"
            )
            values.update({":at": Decimal(f"{retry_at:.3f}"), ":why": failure.msg[:300]})
            values[":n"] = failures
        try:
            self._client.update_item(
                TableName=self._table,
                Key=to_dynamo({"pk": self._key}),
                UpdateExpression=update,
                ConditionExpression="lease_owner = :me",
                ExpressionAttributeValues=to_dynamo(values),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            logger.warning("the token lease expired before the renewal finished")


@dataclass(frozen=True, slots=True)
class _Leased:
    """The lease is ours; ``stored`` is the token the item held (the one to renew)."""

    stored: Token | None


def _same(token: Token, other: Token | None) -> bool:
    return other is not None and token.access_token == other.access_token
