"""Keeping the client's access token usable: renewed ahead of expiry, replaced when rejected.

A token call (a grant, or a refresh) goes out through the client's send path, signed, paced
and clock-corrected like any call, as one attempt: the
:class:`~fwwatch.tuya.resilience.TokenGate` spaces the next attempt, shared by every call
that waits for a token. What is kept here is when to renew, how (refresh first, else a new
grant), and what a token answer must hold to be used.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .answers import GRANT_PATH
from .errors import TuyaError, TuyaFatalError, TuyaResponseError, TuyaTransientError
from .resilience import CallBudget, TokenGate
from .stats import ClientStats
from .tokens import Token

__all__ = ["AskForToken", "TokenKeeper", "read_token"]

logger = logging.getLogger("fwwatch.tuya")

#: Sends one token call, ``(path, query)``: its ``(result, tid)``, or the answer's error.
AskForToken = Callable[[str, Mapping[str, str | int] | None], Awaitable[tuple[Any, str | None]]]


class TokenKeeper:
    """The client's token: loaded from its store, renewed by one caller at a time."""

    def __init__(
        self,
        gate: TokenGate,
        ask: AskForToken,
        *,
        clock: Callable[[], float],
        refresh_margin_s: float,
        stats: ClientStats,
        raise_if_ended: Callable[[], None],
    ) -> None:
        """``raise_if_ended`` raises the fatal error that ended the client, if one has: a
        renewal under way stops there rather than ask the cloud again."""
        self._gate = gate
        self._store = gate.store
        self._ask = ask
        self._clock = clock
        self._refresh_margin_s = refresh_margin_s
        self._stats = stats
        self._raise_if_ended = raise_if_ended

    async def usable(self, budget: CallBudget) -> Token:
        """The token to send a call with, renewed first if it is missing or expires soon."""
        # A call that starts while the token is being renewed waits for the new one rather
        # than spend a request on the token that was just rejected.
        await self._gate.settled(budget)
        token = await self._store.load()
        self._raise_if_ended()
        now = self._clock()
        if token is None or token.expires_within(self._refresh_margin_s, now):
            try:
                token = await self._gate.renew(token, self._refresh_or_grant, budget)
            except TuyaTransientError:
                # Renewing ahead of expiry failed: the token still works for a while.
                if token is not None and not token.expires_within(5.0, self._clock()):
                    return token
                raise
        return token

    async def replace_rejected(self, rejected: Token, budget: CallBudget) -> Token:
        """A new token for every call that failed with ``rejected``: one grant among them."""

        async def grant(current: Token | None) -> Token:
            # Called only when the rejected token is still the current one: one grant for
            # every call that failed with it, and churn noted (grants slowed if it repeats).
            delay = self._gate.rejected(rejected)
            if delay > 0:
                # Fresh tokens keep being rejected: the grant itself waits, and every call
                # that needs a token waits for it.
                await asyncio.sleep(delay)
            self._raise_if_ended()
            return await self._grant()

        return await self._gate.renew(rejected, grant, budget)

    async def _refresh_or_grant(self, stale: Token | None) -> Token:
        self._raise_if_ended()
        # The renewal may have raced with another holder of the store: only renew a token
        # that is really missing or about to expire.
        now = self._clock()
        if stale is not None and not stale.expires_within(self._refresh_margin_s, now):
            return stale
        if stale is not None and stale.refresh_token:
            try:
                return await self._token_call(f"{GRANT_PATH}/{stale.refresh_token}", refresh=True)
            except TuyaFatalError:
                raise
            except TuyaError as exc:
                logger.info("token refresh failed (%s); taking a new grant", exc.code or exc.msg)
        return await self._grant()

    async def _grant(self) -> Token:
        return await self._token_call(GRANT_PATH, {"grant_type": 1}, refresh=False)

    async def _token_call(
        self, path: str, query: Mapping[str, str | int] | None = None, *, refresh: bool
    ) -> Token:
        result, tid = await self._ask(path, query)
        token = read_token(result, tid, now=self._clock())
        if refresh:
            self._stats.refreshes += 1
        else:
            self._stats.grants += 1
        return token


def read_token(result: Any, tid: str | None, *, now: float) -> Token:
    """The token in the ``result`` of a token call, or :class:`TuyaResponseError`.

    Both tokens end up in headers and in the refresh call's URL path, so anything that could
    change a header or a URL is refused rather than sent.
    """
    if not isinstance(result, dict) or not _is_token(result.get("access_token")):
        raise TuyaResponseError("token answer without a usable access_token", tid=tid)
    if not _is_token(result.get("refresh_token") or "-"):
        raise TuyaResponseError("token answer with an unusable refresh_token", tid=tid)
    ttl = _seconds(result.get("expire_time", result.get("expire")), default=7200.0)
    return Token(
        access_token=str(result["access_token"]),
        refresh_token=str(result.get("refresh_token") or ""),
        expires_at=now + ttl,
        uid=str(result.get("uid") or ""),
    )


def _is_token(value: object) -> bool:
    """A token that can travel in a header and a URL path: printable ASCII, no separators."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= 512
        and value.isascii()
        and value.isprintable()
        and not any(c in value for c in " /?#%")
    )


def _seconds(value: object, *, default: float) -> float:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except (ValueError, OverflowError):
            return default
        # NaN or infinity would give a token that is never renewed.
        if math.isfinite(seconds) and seconds > 0:
            return seconds
    return default
