"""Faults the simulated cloud can be told to produce: latency, errors, broken responses."""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Literal

MalformedKind = Literal["truncated", "not_json", "missing_result"]


@dataclass
class ErrorInjection:
    """Answer the next `remaining` matching business requests with Tuya error `code`."""

    code: int
    remaining: int
    path_contains: str | None = None
    msg: str | None = None


@dataclass
class HttpStatusInjection:
    """Answer the next `remaining` matching requests with a bare HTTP `status`."""

    status: int
    remaining: int
    path_contains: str | None = None
    retry_after: str | None = None


@dataclass
class MalformedInjection:
    """Corrupt the body of the next `remaining` matching responses."""

    kind: MalformedKind
    remaining: int
    path_contains: str | None = None


@dataclass
class HangInjection:
    """Hold the next `remaining` matching responses back for `seconds` (on top of latency)."""

    seconds: float
    remaining: int
    path_contains: str | None = None


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

    def set_latency(self, latency_s: float, jitter_s: float = 0.0) -> None:
        """Delay every response by `latency_s` plus a uniform random 0..`jitter_s`."""
        if latency_s < 0 or jitter_s < 0:
            raise ValueError("latency and jitter must be >= 0")
        with self._lock:
            self.latency_s = latency_s
            self.jitter_s = jitter_s

    def inject_error(
        self, code: int, count: int = 1, path_contains: str | None = None, msg: str | None = None
    ) -> None:
        """Make the next `count` matching business calls answer Tuya error `code`."""
        _check_count(count)
        with self._lock:
            self._errors.append(ErrorInjection(code, count, path_contains, msg))

    def inject_http_status(
        self,
        status: int,
        count: int = 1,
        path_contains: str | None = None,
        retry_after: float | str | None = None,
    ) -> None:
        """Make the next `count` matching requests answer HTTP `status` with a plain body.

        `retry_after` (seconds) adds a Retry-After header, as a 429 or 503 may carry.
        """
        _check_count(count)
        if not 100 <= status <= 599:
            raise ValueError(f"not an HTTP status: {status}")
        ra = None if retry_after is None else _format_retry_after(retry_after)
        with self._lock:
            self._http.append(HttpStatusInjection(status, count, path_contains, ra))

    def inject_malformed(
        self, count: int = 1, kind: MalformedKind = "truncated", path_contains: str | None = None
    ) -> None:
        """Corrupt the next `count` matching responses.

        kinds: "truncated" (the JSON cut in half), "not_json" (an HTML error page with HTTP
        200), "missing_result" (a success envelope without `result`).
        """
        _check_count(count)
        if kind not in ("truncated", "not_json", "missing_result"):
            raise ValueError(f"unknown malformed kind {kind!r}")
        with self._lock:
            self._malformed.append(MalformedInjection(kind, count, path_contains))

    def inject_hang(self, seconds: float, count: int = 1, path_contains: str | None = None) -> None:
        """Hold the next `count` matching responses back for `seconds` (read-timeout tests)."""
        _check_count(count)
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self._hangs.append(HangInjection(seconds, count, path_contains))

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
            }

    # Consumption, called by the cloud for each request. The unlocked emptiness checks keep
    # the common no-fault path free of lock traffic; a racing injection just applies to the
    # next request instead.

    def take_http_status(self, path: str) -> HttpStatusInjection | None:
        """Consume and return the first HTTP-status injection matching `path`."""
        return _take(self._lock, self._http, path) if self._http else None

    def take_error(self, path: str) -> ErrorInjection | None:
        """Consume and return the first error injection matching `path`."""
        return _take(self._lock, self._errors, path) if self._errors else None

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


def _take[T: (ErrorInjection, HttpStatusInjection, MalformedInjection, HangInjection)](
    lock: threading.Lock, queue: deque[T], path: str
) -> T | None:
    with lock:
        for item in queue:
            if item.path_contains is None or item.path_contains in path:
                item.remaining -= 1
                if item.remaining <= 0:
                    queue.remove(item)
                return item
    return None


def _check_count(count: int) -> None:
    if count < 1:
        raise ValueError("count must be >= 1")


def _format_retry_after(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)
