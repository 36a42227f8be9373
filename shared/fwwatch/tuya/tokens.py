"""Access tokens: one per client (or per fleet of containers), renewed by one caller at a time.

Tuya keeps one live token per Access ID: a new grant kills every older token. So the token
is shared through a :class:`TokenStore`; the in-memory store serves one process, and a
shared store (for example a DynamoDB item) lets several processes use the same token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["InMemoryTokenStore", "Token", "TokenStore"]


@dataclass(frozen=True, slots=True)
class Token:
    """An access token and its refresh token. The secrets stay out of ``repr``."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: float  # epoch seconds, on the client's (offset-corrected) clock
    uid: str = ""

    def expires_within(self, seconds: float, now: float) -> bool:
        """True when the token is dead or will be within ``seconds``."""
        return self.expires_at - seconds <= now


Renew = Callable[[Token | None], Awaitable[Token]]


class TokenStore(Protocol):
    """Where the current token lives, and who may renew it."""

    async def load(self) -> Token | None:
        """The current token, or ``None`` when there is none yet."""
        ...

    async def replace(self, stale: Token | None, renew: Renew) -> Token:
        """Replace ``stale`` with a token from ``renew`` unless someone already has.

        ``renew`` receives the token being replaced (for a refresh) and returns a new one.
        If the current token is no longer ``stale`` (another caller renewed it), the current
        token is returned and ``renew`` is not called: all the callers that saw the same dead
        token together cause one renewal.
        """
        ...


class InMemoryTokenStore:
    """The token of one process; one renewal in flight at a time."""

    def __init__(self) -> None:
        self._token: Token | None = None
        self._lock = asyncio.Lock()

    async def load(self) -> Token | None:
        return self._token

    async def replace(self, stale: Token | None, renew: Renew) -> Token:
        async with self._lock:
            current = self._token
            if current is not None and (
                stale is None or current.access_token != stale.access_token
            ):
                return current
            self._token = await renew(current)
            return self._token
