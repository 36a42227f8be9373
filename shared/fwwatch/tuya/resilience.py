"""How the client lives through a bad moment: retry budgets, shared token renewals, outages.

Three pieces, one rule each:

- :class:`RetryPolicy` / :class:`CallBudget`: every call (grant, refresh, listing page,
  firmware) retries transient trouble with full-jitter backoff within a budget of attempts
  and seconds; when the budget is spent it fails with a :class:`TuyaTransientError`.
- :class:`TokenGate`: one token renewal at a time, and its outcome, success or failure, is
  shared by every call that waits for it. A failed renewal is spaced by a backoff that all
  waiters share (one grant attempt per step, however many calls wait), and so are grants
  when fresh tokens keep being rejected (another process on the same Access ID).
- :class:`OutageBreaker`: when a call spends its whole budget and nothing has succeeded since
  it started, the cloud is down: later calls fail at once instead of each spending a budget
  of its own, and one call at a time probes whether the cloud is back. 10,000 devices
  against a dead endpoint end in about one budget, not in hours.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .errors import TuyaError, TuyaFatalError, TuyaTransientError
from .ratelimit import full_jitter_backoff
from .tokens import Renew, Token, TokenStore

__all__ = ["CallBudget", "OutageBreaker", "RetryPolicy", "TokenGate"]

logger = logging.getLogger("fwwatch.tuya")

#: A token rejected younger than this was "fresh": someone else is taking tokens.
FRESH_TOKEN_S = 60.0
#: A call with less budget left than this gives up rather than try once more.
MIN_LAST_WAIT_S = 0.05


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of one call: at most ``attempts`` tries within ``budget_s`` seconds."""

    attempts: int = 8
    budget_s: float = 30.0
    base_s: float = 0.25
    cap_s: float = 8.0

    def start(self, clock: Callable[[], float] = time.monotonic) -> CallBudget:
        """The budget of a call that starts now."""
        return CallBudget(self, clock)

    def backoff(self, step: int, rng: Callable[[float, float], float] = random.uniform) -> float:
        """Seconds to wait before retry ``step`` (0-based), with full jitter."""
        return full_jitter_backoff(step, base_s=self.base_s, cap_s=self.cap_s, rng=rng)


class CallBudget:
    """What one call may still spend on retries: attempts and seconds."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float]) -> None:
        self.policy = policy
        self._clock = clock
        self.started = clock()
        self.deadline = self.started + policy.budget_s
        self.attempts = policy.attempts
        self.failures = 0
        self.token_rejections = 0
        self.clock_corrections = 0

    def limit_to_one_attempt(self) -> None:
        """A probe of a cloud that was down: one try, no retries."""
        self.attempts = 1

    def remaining_s(self) -> float:
        """Seconds left before the deadline (never negative)."""
        return max(0.0, self.deadline - self._clock())

    def retry_delay(
        self, rng: Callable[[float, float], float], retry_after: float | None = None
    ) -> float | None:
        """Count a transient failure; the wait before the next try, or ``None``: give up."""
        self.failures += 1
        if self.failures >= self.attempts:
            return None
        delay = self.policy.backoff(self.failures - 1, rng)
        if retry_after is not None:
            delay = max(delay, min(retry_after, 60.0))
        # The last wait is shortened to fit the budget rather than given up on.
        remaining = self.remaining_s()
        if remaining < MIN_LAST_WAIT_S:
            return None
        return min(delay, remaining - MIN_LAST_WAIT_S / 2)

    def count_failure(self) -> bool:
        """Count a failure that has its own spacing (a shared token renewal): retry at all?"""
        self.failures += 1
        return self.failures < self.attempts and self._clock() < self.deadline

    def may_retry_token(self) -> bool:
        """Count a rejected token: may the call take a new one and try again?"""
        self.token_rejections += 1
        return self.token_rejections < self.attempts and self._clock() < self.deadline

    def gave_up(self, what: str) -> str:
        """How the call ended, for its error."""
        seconds = self._clock() - self.started
        tries = self.failures + self.token_rejections
        if tries <= 1:
            return what
        return f"{what}; gave up after {tries} attempts in {seconds:.1f} s"


class OutageBreaker:
    """Stops spending a retry budget per call while the whole cloud is failing."""

    def __init__(
        self, *, probe_every_s: float = 8.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._probe_every_s = probe_every_s
        self._clock = clock
        self._last_success = float("-inf")
        self._open_since: float | None = None
        self._probe_at = 0.0
        self._cause: TuyaTransientError | None = None
        self.rejected = 0

    @property
    def is_open(self) -> bool:
        """The cloud is considered down: calls fail at once but for the probes."""
        return self._open_since is not None

    def admit(self) -> bool:
        """May a call go out? ``True`` when it is a probe (one attempt); raises when not."""
        if self._open_since is None:
            return False
        now = self._clock()
        if now >= self._probe_at:
            self._probe_at = now + self._probe_every_s
            return True
        self.rejected += 1
        down = now - self._open_since
        assert self._cause is not None
        raise TuyaTransientError(
            f"not sent: the cloud has been failing for {down:.0f} s ({self._cause.msg}); "
            f"it is probed again in {self._probe_at - now:.0f} s",
            code=self._cause.code,
            tid=self._cause.tid,
            retry_after_s=self._probe_at - now,
        )

    def succeeded(self) -> None:
        """The cloud answered (any readable answer, device errors included)."""
        self._last_success = self._clock()
        if self._open_since is not None:
            logger.warning("the cloud answers again; resuming")
        self._open_since = None

    def gave_up(self, budget: CallBudget, error: TuyaTransientError) -> None:
        """A call spent its budget: if nothing succeeded meanwhile, the cloud is down."""
        if self._last_success >= budget.started:
            return
        now = self._clock()
        if self._open_since is None:
            self._open_since = budget.started
            logger.warning(
                "the cloud has failed every call for %.0f s (%s): failing calls at once, "
                "probing every %.0f s",
                now - budget.started,
                error.msg,
                self._probe_every_s,
            )
        self._cause = error
        self._probe_at = max(self._probe_at, now + self._probe_every_s)
        # Whoever tries this call again (a device's next check) waits for the next probe.
        if error.retry_after_s is None:
            error.retry_after_s = self._probe_at - now


class TokenGate:
    """The client's way to a new token: single-flight, outcome shared, failures spaced."""

    def __init__(
        self,
        store: TokenStore,
        policy: RetryPolicy,
        *,
        access_id: str,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.store = store
        self._policy = policy
        self._access_id = access_id
        self._clock = clock
        self._rng = rng
        self._inflight: asyncio.Future[Token] | None = None
        self._failures = 0
        self._failed_steps = 0
        self._retry_at = 0.0
        self._last_error: TuyaError | None = None
        self._churn = 0
        self._warned = False
        self._granted_at: dict[str, float] = {}
        self._last_rejected: str | None = None

    async def renew(self, stale: Token | None, renew: Renew, budget: CallBudget) -> Token:
        """A token to replace ``stale``, within the call's budget.

        Every caller that waits while a renewal is under way gets its outcome; after a
        failed renewal callers wait for the shared backoff step (if their budget reaches
        it) and one of them makes the next attempt.
        """
        seen = self._failed_steps
        while True:
            # Every step that failed while this call waited is a failure of this call too,
            # whoever made the attempt: one grant attempt per step, however many wait.
            while seen < self._failed_steps:
                seen += 1
                if not budget.count_failure():
                    raise self._give_up(budget)
            inflight = self._inflight
            if inflight is not None:
                try:
                    return await asyncio.shield(inflight)
                except TuyaFatalError:
                    raise
                except TuyaError:
                    continue  # counted above, as a failed step
            wait = self._retry_at - self._clock()
            if wait > 0:
                # A call that comes late may find the renewal it needs already done.
                current = await self.store.load()
                if current is not None and (
                    stale is None or current.access_token != stale.access_token
                ):
                    return current
                if wait >= budget.remaining_s():
                    raise self._give_up(budget)
                await asyncio.sleep(wait)
                continue
            token = await self._attempt(stale, renew)
            if token is not None:
                return token

    async def settled(self, budget: CallBudget) -> None:
        """Wait for a renewal under way, if any; its failure is the call's failure too."""
        inflight = self._inflight
        if inflight is None:
            return
        try:
            await asyncio.shield(inflight)
        except TuyaFatalError:
            raise
        except TuyaError:
            if not budget.count_failure():
                raise self._give_up(budget) from None

    def rejected(self, token: Token) -> float:
        """The current token was refused: how long to wait before the grant that replaces it.

        Nothing the first time; when fresh tokens keep being rejected, a backoff that grows
        with each one in a row (shared: every call waits for the same grant).
        """
        if token.access_token != self._last_rejected:
            self._last_rejected = token.access_token
            granted = self._granted_at.get(token.access_token)
            fresh = granted is not None and self._clock() - granted < FRESH_TOKEN_S
            self._churn = self._churn + 1 if fresh else 1
        if self._churn < 2:
            return 0.0
        self._warn_once()
        return self._policy.backoff(self._churn - 2, self._rng)

    def _warn_once(self) -> None:
        if self._churn >= 3 and not self._warned:
            self._warned = True
            logger.warning(
                "the cloud keeps rejecting fresh access tokens (%d in a row): another process "
                "or deployment is probably taking tokens for the same Access ID %r. Give each "
                "its own cloud project, or stop the other one; meanwhile token grants are "
                "slowed down and the run goes on",
                self._churn,
                self._access_id,
            )

    async def _attempt(self, stale: Token | None, renew: Renew) -> Token | None:
        future: asyncio.Future[Token] = asyncio.get_running_loop().create_future()
        self._inflight = future
        try:
            token = await self.store.replace(stale, self._remembering(renew))
        except TuyaFatalError as exc:
            _settle(future, exc)
            raise
        except TuyaError as exc:
            self._failures += 1
            self._failed_steps += 1
            self._last_error = exc
            step = self._policy.backoff(self._failures - 1, self._rng)
            # Another holder of a shared store may have said when the next try is due.
            told = exc.retry_after_s if isinstance(exc, TuyaTransientError) else None
            self._retry_at = self._clock() + max(step, told or 0.0)
            _settle(future, exc)
            return None
        except BaseException as exc:
            # Cancelled or broken mid-renewal: the waiters try again themselves.
            _settle(future, TuyaTransientError(f"token renewal interrupted ({type(exc).__name__})"))
            raise
        finally:
            if self._inflight is future:
                self._inflight = None
        self._failures = 0
        future.set_result(token)
        return token

    def _remembering(self, renew: Renew) -> Callable[[Token | None], Awaitable[Token]]:
        async def renew_and_note(current: Token | None) -> Token:
            token = await renew(current)
            if len(self._granted_at) > 64:
                self._granted_at.clear()
            self._granted_at[token.access_token] = self._clock()
            return token

        return renew_and_note

    def _give_up(self, budget: CallBudget) -> TuyaTransientError:
        last = self._last_error
        cause = last.msg if last is not None else "fresh tokens keep being rejected"
        return TuyaTransientError(
            budget.gave_up(f"no access token: {cause}"),
            code=last.code if last else None,
            tid=last.tid if last else None,
        )


def _settle(future: asyncio.Future[Token], error: BaseException) -> None:
    future.set_exception(error)
    # Nobody may be waiting: mark the exception as seen so asyncio does not log it.
    future.exception()
