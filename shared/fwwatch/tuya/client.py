"""The Tuya Cloud client: signed, paced, retried, and honest about what went wrong.

One :class:`TuyaClient` holds its keep-alive connections (:mod:`fwwatch.tuya.transport`), one
token (kept by :mod:`fwwatch.tuya.token_keeper`), one clock offset and one rate limiter,
shared by every concurrent call made through it.

The send path is stacked methods, one concern each: :meth:`TuyaClient.call` ends the client
on a fatal answer and fails fast through an outage; ``_call`` retries one call until it has
an answer, with a new token when the token is rejected; ``_exchange`` is one try and its
backoff; ``_send`` puts one request on a connection at the limiter's pace; ``_read`` says
whether the answer calls for a retry. What an answer means is read in
:mod:`fwwatch.tuya.answers`, from the table of :mod:`fwwatch.tuya.codes`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

import httpx

from . import listing
from .answers import Envelope, decode, error_for, fatal_error, redact, retry_after
from .codes import Kind
from .config import TuyaSettings
from .errors import TuyaDeviceError, TuyaFatalError, TuyaResponseError, TuyaTransientError
from .listing import DevicePage
from .models import DeviceFirmware, DeviceSummary, parse_firmware, validate_device_id
from .ratelimit import AdaptiveRateLimiter
from .resilience import CallBudget, OutageBreaker, RetryPolicy, TokenGate
from .signing import canonical_url, signed_headers
from .stats import ClientStats
from .token_keeper import TokenKeeper
from .tokens import InMemoryTokenStore, Token, TokenStore
from .transport import AnswerTooLargeError, Connections

__all__ = ["ClientStats", "RetryPolicy", "TuyaClient"]

logger = logging.getLogger("fwwatch.tuya")


@dataclass(frozen=True, slots=True)
class _Answer:
    """An HTTP answer, the token its request went out with, and when it went and came."""

    response: httpx.Response
    token: Token | None
    sent_at: float
    received_at: float


@dataclass(frozen=True, slots=True)
class _NoAnswer:
    """A request that got no answer: why, as a retry reason and in words."""

    reason: str
    detail: str
    token: Token | None


class TuyaClient:
    """Async client for Tuya's cloud OpenAPI.

    Use it as an async context manager (``async with TuyaClient(settings) as tuya``) so the
    connections are closed. Every public call validates its input before any request.
    """

    def __init__(
        self,
        settings: TuyaSettings,
        *,
        token_store: TokenStore | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        retry: RetryPolicy | None = None,
        known_rate_limit: float | None = None,
        refresh_margin_s: float = 300.0,
        rng: Callable[[float, float], float] = random.uniform,
    ) -> None:
        """``retry`` defaults to ``TUYA_RETRY_ATTEMPTS`` tries within ``TUYA_RETRY_BUDGET_S``;
        ``known_rate_limit`` is the server's limit learned by an earlier run (see
        :attr:`learned_rate_limit`): the run starts just under it instead of slow-starting."""
        self.settings = settings
        self.stats = ClientStats()
        self.limiter = AdaptiveRateLimiter(settings.qps, known_limit=known_rate_limit)
        self._retry = retry or RetryPolicy(
            attempts=settings.retry_attempts, budget_s=settings.retry_budget_s
        )
        self._tokens: TokenStore = token_store or InMemoryTokenStore()
        self._keeper = TokenKeeper(
            TokenGate(self._tokens, self._retry, access_id=settings.access_id, rng=rng),
            self._ask_for_token,
            clock=clock,
            refresh_margin_s=refresh_margin_s,
            stats=self.stats,
            raise_if_ended=self._raise_if_ended,
        )
        self._breaker = OutageBreaker(probe_every_s=2.0)
        self._clock = clock
        self._offset_ms = 0
        self._rng = rng
        connections = settings.connections
        self._slots = asyncio.Semaphore(connections)
        # A fatal answer (bad secret, wrong data centre...) ends this client: every later
        # call raises it again without asking the cloud, so there is no retry storm.
        self._fatal: TuyaFatalError | None = None
        self._connections = Connections(
            settings.base_url,
            connections,
            timeout_s=settings.timeout_s,
            max_answer_bytes=settings.max_answer_bytes,
            transport=transport,
        )

    @property
    def connections(self) -> int:
        """How many requests this client has in flight at most."""
        return self.settings.connections

    @property
    def learned_rate_limit(self) -> float | None:
        """The server's rate limit as learned so far (to give the next run), or ``None``."""
        return self.limiter.learned_limit

    def __repr__(self) -> str:
        settings = self.settings
        return f"TuyaClient(endpoint={settings.base_url!r}, access_id={settings.access_id!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._connections.aclose()

    @property
    def clock_offset_ms(self) -> int:
        """How far the server's clock is ahead of ours, learnt from 1013 answers."""
        return self._offset_ms

    # ------------------------------------------------------------------ public calls

    async def get_firmware(self, device_id: str) -> DeviceFirmware:
        """Firmware of every channel of a device (``GET /v2.0/cloud/thing/{id}/firmware``)."""
        device_id = validate_device_id(device_id)
        try:
            result, tid = await self.call("GET", f"/v2.0/cloud/thing/{device_id}/firmware")
        except TuyaDeviceError as exc:
            exc.device_id = device_id
            raise
        return parse_firmware(device_id, result, tid=tid)

    async def list_devices(self) -> AsyncIterator[DeviceSummary]:
        """Every device of the project, page after page, following cursors to the end."""
        async for device in listing.devices(self.call, self.settings):
            yield device

    async def list_device_pages(self, cursor: str | None = None) -> AsyncGenerator[DevicePage]:
        """The project's devices a page at a time, from ``cursor`` (a page's ``next_cursor``;
        ``None``: the first page) to the last page, whose ``next_cursor`` is ``None``."""
        async for page in listing.device_pages(self.call, self.settings, cursor):
            yield page

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: Any = None,
    ) -> tuple[Any, str | None]:
        """One API call with token, clock, rate and retry handling: ``(result, tid)``.

        Transient trouble is retried within the call's budget, then raised as
        :class:`TuyaTransientError`; a fatal answer is raised at once and ends the client.
        """
        self._raise_if_ended()
        budget = self._retry.start()
        if self._breaker.admit():
            budget.limit_to_one_attempt()
        try:
            return await self._call(method, path, query, body, budget)
        except TuyaFatalError as exc:
            self._fatal = self._fatal or exc
            raise
        except TuyaTransientError as exc:
            self._breaker.gave_up(budget, exc)
            raise

    def _raise_if_ended(self) -> None:
        """Raise the fatal error that ended this client, if one has."""
        if self._fatal is not None:
            raise self._fatal

    async def _call(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int] | None,
        body: Any,
        budget: CallBudget,
    ) -> tuple[Any, str | None]:
        while True:
            self._raise_if_ended()
            token = await self._keeper.usable(budget)
            envelope, sent_with = await self._exchange(method, path, query, body, token, budget)
            token = sent_with or token
            if envelope is None:
                continue
            if envelope.success:
                return envelope.result, envelope.tid
            if envelope.meaning.kind is Kind.TOKEN_REJECTED:
                # Transient, never fatal: another process may have taken a grant. A new token
                # for every call that failed with this one (one grant), then try again.
                self.stats.retries["token"] += 1
                if not budget.may_retry_token():
                    raise TuyaTransientError(
                        budget.gave_up(f"{redact(path)}: access token rejected ({envelope.msg})"),
                        code=envelope.code,
                        tid=envelope.tid,
                    )
                logger.info("token rejected (code %s); taking a new one", envelope.code)
                await self._keeper.replace_rejected(token, budget)
                continue
            raise error_for(envelope, path, self.settings)

    # ------------------------------------------------------------------ one exchange

    async def _exchange(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int] | None,
        body: Any,
        token: Token | None,
        budget: CallBudget,
    ) -> tuple[Envelope | None, Token | None]:
        """Send once: the answer (``None`` means "retry") and the token it was sent with."""
        sent = await self._send(method, path, query, body, token)
        if isinstance(sent, _NoAnswer):
            # Backing off happens outside the semaphore: a waiting retry holds no connection.
            await self._retry_later(budget, sent.reason, path, sent.detail)
            return None, sent.token
        return await self._read(sent, method, path, budget), sent.token

    async def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int] | None,
        body: Any,
        token: Token | None,
    ) -> _Answer | _NoAnswer:
        """One request on a connection of its own, at the limiter's pace."""
        body_bytes = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        async with self._slots:
            await self.limiter.acquire()
            if token is not None:
                # The token may have been renewed while this call waited for its turn.
                token = await self._tokens.load() or token
            headers = self._signed_headers(method, path, query, body_bytes, token)
            sent_at = self._clock()
            self.stats.requests += 1
            try:
                response = await self._connections.send(
                    method, path, params=query, headers=headers, content=body_bytes
                )
            except httpx.TimeoutException as exc:
                return _NoAnswer("timeout", f"timed out ({exc or type(exc).__name__})", token)
            except AnswerTooLargeError:
                cap = self.settings.max_answer_bytes
                detail = f"an answer larger than {cap:,} bytes decoded"
                return _NoAnswer("too_large", detail, token)
            except httpx.DecodingError as exc:
                detail = f"an answer that cannot be decoded ({exc})"
                return _NoAnswer("malformed", detail, token)
            except httpx.TransportError as exc:
                return _NoAnswer("connection", f"cannot connect: {exc}", token)
            return _Answer(response, token, sent_at, received_at=self._clock())

    async def _read(
        self, answer: _Answer, method: str, path: str, budget: CallBudget
    ) -> Envelope | None:
        """The answer's envelope, or ``None`` once a retry is due (busy, throttled, clock)."""
        response = answer.response
        if logger.isEnabledFor(logging.DEBUG):
            url = redact(str(response.url))
            logger.debug("%s %s: HTTP %d", method, url, response.status_code)

        if response.status_code == 429 or response.status_code >= 500:
            if response.status_code == 429:
                self.limiter.on_throttled()
            await self._retry_later(
                budget,
                f"http_{response.status_code}",
                path,
                f"HTTP {response.status_code}",
                retry_after=retry_after(response),
            )
            return None
        try:
            envelope = decode(response)
        except TuyaResponseError as exc:
            await self._retry_later(budget, "malformed", path, exc.msg)
            return None

        self._breaker.succeeded()
        if envelope.success:
            self.limiter.on_success()
            return envelope
        if envelope.code is not None:
            self.stats.error_codes[envelope.code] += 1
        kind = envelope.meaning.kind
        if kind is Kind.CLOCK_SKEW:
            self._learn_clock_offset(envelope, answer, path, budget)
            return None
        if kind is Kind.THROTTLED:
            self.limiter.on_throttled()
            await self._retry_later(budget, f"code_{envelope.code}", path, envelope.coded())
            return None
        if kind is Kind.BUSY:
            await self._retry_later(budget, f"code_{envelope.code}", path, envelope.coded())
            return None
        return envelope

    def _signed_headers(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int] | None,
        body: bytes,
        token: Token | None,
    ) -> dict[str, str]:
        return signed_headers(
            client_id=self.settings.access_id,
            secret=self.settings.access_secret.get_secret_value(),
            # The time as the server's clock tells it, once a 1013 answer gave the offset.
            t=str(int(self._clock() * 1000) + self._offset_ms),
            nonce=uuid.uuid4().hex,
            method=method,
            url=canonical_url(path, query),
            body=body,
            access_token=token.access_token if token else None,
            lang=self.settings.lang,
        )

    async def _retry_later(
        self,
        budget: CallBudget,
        reason: str,
        path: str,
        detail: str,
        *,
        retry_after: float | None = None,
    ) -> None:
        delay = budget.retry_delay(self._rng, retry_after)
        if delay is None:
            raise TuyaTransientError(budget.gave_up(f"{redact(path)}: {detail}"))
        self.stats.retries[reason] += 1
        logger.debug("retrying %s in %.2fs: %s", redact(path), delay, detail)
        await asyncio.sleep(delay)

    def _learn_clock_offset(
        self, envelope: Envelope, answer: _Answer, path: str, budget: CallBudget
    ) -> None:
        budget.clock_corrections += 1
        if envelope.t is None or budget.clock_corrections > 2:
            raise fatal_error(envelope, path, self.settings)
        # The server stamped its time somewhere between sending and receiving: the middle.
        local_ms = (answer.sent_at + answer.received_at) / 2 * 1000
        self._offset_ms = round(envelope.t - local_ms)
        self.stats.clock_corrections += 1
        logger.warning(
            "local clock is %.1f s off the cloud's; correcting requests by that offset",
            self._offset_ms / 1000,
        )

    # ------------------------------------------------------------------ tokens

    async def _ask_for_token(
        self, path: str, query: Mapping[str, str | int] | None
    ) -> tuple[Any, str | None]:
        """One token call through the send path: ``(result, tid)``, or the answer's error."""
        # One attempt (clock corrections aside): the token gate spaces the next one, shared
        # by every call that waits for a token.
        budget = RetryPolicy(attempts=1, budget_s=self.settings.timeout_s).start()
        while True:
            envelope, _ = await self._exchange("GET", path, query, None, None, budget)
            if envelope is not None:
                break
        if not envelope.success:
            raise error_for(envelope, path, self.settings)
        return envelope.result, envelope.tid
