"""Faults the simulated cloud can be told to produce: latency, errors, broken responses."""

from __future__ import annotations

import functools
import random
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

MalformedKind = Literal["truncated", "not_json", "missing_result"]
#: Which requests a Tuya-code injection answers: business calls, token calls, or both.
CallKind = Literal["business", "token", "any"]


@dataclass
class _Injection:
    """What every injection shares: which requests it hits, how often, until when.

    Of the requests whose path contains `path_contains` (any if None), every `every`-th is
    hit, `remaining` times (None: no limit), until `until` (a `time.monotonic()` reading;
    None: no end).
    """

    remaining: int | None
    path_contains: str | None = None
    every: int = 1
    until: float | None = None
    seen: int = field(default=0, repr=False)

    def matches(self, path: str) -> bool:
        return self.path_contains is None or self.path_contains in path


@dataclass
class ErrorInjection(_Injection):
    """Answer matching requests with Tuya error `code` (business calls unless `calls` says)."""

    code: int = 0
    msg: str | None = None
    calls: CallKind = "business"


@dataclass
class HttpStatusInjection(_Injection):
    """Answer matching requests with a bare HTTP `status`, before any Tuya check."""

    status: int = 503
    retry_after: str | None = None


@dataclass
class MalformedInjection(_Injection):
    """Corrupt the body of matching responses."""

    kind: MalformedKind = "truncated"


@dataclass
class HangInjection(_Injection):
    """Hold matching responses back for `seconds` (on top of latency)."""

    seconds: float = 0.0


@dataclass
class DripInjection(_Injection):
    """Send matching answers one byte at a time, `interval_s` apart (a slow-drip body)."""

    interval_s: float = 0.1


@dataclass
class BombInjection(_Injection):
    """Answer matching requests with a gzip body that inflates to `inflated_bytes`."""

    inflated_bytes: int = 2**30


class Faults:
    """Runtime fault switches of one SimulatedCloud.

    Safe to call from a thread other than the server's: every change and every consumption
    of an injection happens under a lock. Injections are consumed first-in first-out; each
    one only counts requests whose path contains its `path_contains` (any request if None).
    """

    def __init__(self, *, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.latency_s = 0.0
        self.jitter_s = 0.0
        # Positive: the simulator's clock runs ahead of real time.
        self.clock_offset_s = 0.0
        self._errors: deque[ErrorInjection] = deque()
        self._http: deque[HttpStatusInjection] = deque()
        self._malformed: deque[MalformedInjection] = deque()
        self._hangs: deque[HangInjection] = deque()
        self._drips: deque[DripInjection] = deque()
        self._bombs: deque[BombInjection] = deque()

    def set_latency(self, latency_s: float, jitter_s: float = 0.0) -> None:
        """Delay every response by `latency_s` plus a uniform random 0..`jitter_s`."""
        if latency_s < 0 or jitter_s < 0:
            raise ValueError("latency and jitter must be >= 0")
        with self._lock:
            self.latency_s = latency_s
            self.jitter_s = jitter_s

    def inject_error(
        self,
        code: int,
        count: int | None = 1,
        path_contains: str | None = None,
        msg: str | None = None,
        *,
        every: int = 1,
        for_s: float | None = None,
        calls: CallKind = "business",
    ) -> None:
        """Answer Tuya error `code` to `count` matching calls (None: every one), each
        `every`-th, for `for_s` seconds; `calls` picks business calls, token calls (the grant
        and the refresh) or both."""
        if calls not in ("business", "token", "any"):
            raise ValueError(f"calls must be business, token or any, not {calls!r}")
        injection = ErrorInjection(
            **_schedule(count, every, for_s),
            path_contains=path_contains,
            code=code,
            msg=msg,
            calls=calls,
        )
        with self._lock:
            self._errors.append(injection)

    def inject_http_status(
        self,
        status: int,
        count: int | None = 1,
        path_contains: str | None = None,
        retry_after: float | str | None = None,
        *,
        every: int = 1,
        for_s: float | None = None,
    ) -> None:
        """Answer HTTP `status` with a plain body to `count` matching requests of any kind
        (None: every one), each `every`-th, for `for_s` seconds: an outage.

        `retry_after` (seconds) adds a Retry-After header, as a 429 or 503 may carry.
        """
        if not 100 <= status <= 599:
            raise ValueError(f"not an HTTP status: {status}")
        ra = None if retry_after is None else _format_retry_after(retry_after)
        injection = HttpStatusInjection(
            **_schedule(count, every, for_s),
            path_contains=path_contains,
            status=status,
            retry_after=ra,
        )
        with self._lock:
            self._http.append(injection)

    def inject_malformed(
        self, count: int = 1, kind: MalformedKind = "truncated", path_contains: str | None = None
    ) -> None:
        """Corrupt the next `count` matching responses.

        kinds: "truncated" (the JSON cut in half), "not_json" (an HTML error page with HTTP
        200), "missing_result" (a success envelope without `result`).
        """
        if kind not in ("truncated", "not_json", "missing_result"):
            raise ValueError(f"unknown malformed kind {kind!r}")
        injection = MalformedInjection(
            **_schedule(count, 1, None), path_contains=path_contains, kind=kind
        )
        with self._lock:
            self._malformed.append(injection)

    def inject_hang(self, seconds: float, count: int = 1, path_contains: str | None = None) -> None:
        """Hold the next `count` matching responses back for `seconds` (read-timeout tests)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        injection = HangInjection(
            **_schedule(count, 1, None), path_contains=path_contains, seconds=seconds
        )
        with self._lock:
            self._hangs.append(injection)

    def inject_drip(
        self, interval_s: float = 0.1, count: int = 1, path_contains: str | None = None
    ) -> None:
        """Send the next `count` matching answers a byte at a time, `interval_s` apart."""
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        injection = DripInjection(
            **_schedule(count, 1, None), path_contains=path_contains, interval_s=interval_s
        )
        with self._lock:
            self._drips.append(injection)

    def inject_bomb(
        self, inflated_bytes: int = 2**30, count: int = 1, path_contains: str | None = None
    ) -> None:
        """Answer the next `count` matching requests with a decompression bomb: a gzip body
        (about a thousandth of the size) that inflates to `inflated_bytes`."""
        if not 1024 <= inflated_bytes <= 8 * 2**30:
            raise ValueError("inflated_bytes must be between 1 KiB and 8 GiB")
        injection = BombInjection(
            **_schedule(count, 1, None), path_contains=path_contains, inflated_bytes=inflated_bytes
        )
        gzip_bomb(inflated_bytes)  # built now (cached), not while answering a request
        with self._lock:
            self._bombs.append(injection)

    def clear(self) -> None:
        """Remove every pending injection and reset latency and clock offset to zero."""
        with self._lock:
            self.latency_s = 0.0
            self.jitter_s = 0.0
            self.clock_offset_s = 0.0
            self._errors.clear()
            self._http.clear()
            self._malformed.clear()
            self._hangs.clear()
            self._drips.clear()
            self._bombs.clear()

    def snapshot(self) -> dict[str, Any]:
        """The current switches and pending injections, JSON-ready."""
        with self._lock:
            return {
                "latency_s": self.latency_s,
                "jitter_s": self.jitter_s,
                "clock_offset_s": self.clock_offset_s,
                "errors": [asdict(x) for x in self._errors],
                "http_statuses": [asdict(x) for x in self._http],
                "malformed": [asdict(x) for x in self._malformed],
                "hangs": [asdict(x) for x in self._hangs],
                "drips": [asdict(x) for x in self._drips],
                "bombs": [asdict(x) for x in self._bombs],
            }

    # Consumption, called by the cloud for each request. The unlocked emptiness checks keep
    # the common no-fault path free of lock traffic; a racing injection just applies to the
    # next request instead.

    def take_http_status(self, path: str) -> HttpStatusInjection | None:
        """Consume and return the first HTTP-status injection matching `path`."""
        return _take(self._lock, self._http, path) if self._http else None

    def take_error(self, path: str, *, token_call: bool = False) -> ErrorInjection | None:
        """Consume and return the first error injection matching `path` and its kind."""
        if not self._errors:
            return None
        kind = "token" if token_call else "business"
        return _take(self._lock, self._errors, path, lambda e: e.calls in (kind, "any"))

    def take_drip(self, path: str) -> DripInjection | None:
        """Consume and return the first slow-drip injection matching `path`."""
        return _take(self._lock, self._drips, path) if self._drips else None

    def take_bomb(self, path: str) -> BombInjection | None:
        """Consume and return the first decompression-bomb injection matching `path`."""
        return _take(self._lock, self._bombs, path) if self._bombs else None

    def take_malformed(self, path: str) -> MalformedInjection | None:
        """Consume and return the first malformed-body injection matching `path`."""
        return _take(self._lock, self._malformed, path) if self._malformed else None

    def delay_for(self, path: str) -> float:
        """Seconds to hold this response back: latency, jitter and any matching hang."""
        delay = self.latency_s
        if self.jitter_s:
            with self._lock:
                delay += self._rng.uniform(0.0, self.jitter_s)
        if self._hangs:
            hang = _take(self._lock, self._hangs, path)
            if hang is not None:
                delay += hang.seconds
        return delay


def _take[T: _Injection](
    lock: threading.Lock,
    queue: deque[T],
    path: str,
    applies: Callable[[T], bool] | None = None,
) -> T | None:
    with lock:
        now = time.monotonic()
        for item in list(queue):
            if item.until is not None and now >= item.until:
                queue.remove(item)
                continue
            if not item.matches(path) or (applies is not None and not applies(item)):
                continue
            item.seen += 1
            if item.seen % item.every:
                continue  # not this one: every `every`-th matching request is hit
            if item.remaining is not None:
                item.remaining -= 1
                if item.remaining <= 0:
                    queue.remove(item)
            return item
    return None


def _schedule(count: int | None, every: int, for_s: float | None) -> dict[str, Any]:
    """The schedule fields of an injection (remaining, every, until), checked."""
    if count is not None:
        _check_count(count)
    if every < 1:
        raise ValueError("every must be >= 1")
    if for_s is not None and for_s <= 0:
        raise ValueError("for_s must be > 0")
    if count is None and for_s is None and every == 1:
        raise ValueError("an unlimited injection needs for_s (or every > 1)")
    until = None if for_s is None else time.monotonic() + for_s
    return {"remaining": count, "every": every, "until": until}


@functools.lru_cache(maxsize=4)
def gzip_bomb(inflated_bytes: int) -> bytes:
    """A gzip body of a Tuya success envelope whose `result` inflates to `inflated_bytes`."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(b'{"success":true,"t":0,"tid":"bomb","result":[{"desc":"')]
    chunk = b"A" * 2**20
    left = inflated_bytes
    while left > 0:
        parts.append(compressor.compress(chunk[: min(left, len(chunk))]))
        left -= len(chunk)
    parts.append(compressor.compress(b'"}]}'))
    parts.append(compressor.flush())
    return b"".join(parts)


def _check_count(count: int) -> None:
    if count < 1:
        raise ValueError("count must be >= 1")


def _format_retry_after(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)
