"""One throttle budget per F&O environment, shared by every request of the process.

F&O's service protection counts per user and web server (52 concurrent requests, 6,000 requests and
1,200 s of execution per 5 minutes) and answers 429 with ``Retry-After``. Retried requests get no
priority, so hammering only lengthens the wait: one 429 pauses *every* request to that environment
until the server's time has passed, and the allowed concurrency halves (AIMD: it grows back by one per
window of successful requests, between the configured bounds, never above 52).

Threads, not asyncio: msal and pyarrow are synchronous, and the heavy work (TLS, JSON decoding,
Parquet writing) runs in C with the GIL released, so a thread per concurrent read is both simpler and
as fast. The budget is therefore a condition variable, safe to share across threads.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from dataclasses import dataclass, field

from fo_assets.settings import MAX_FO_CONCURRENCY, FoSettings


@dataclass
class Counters:
    """Request counters, safe to bump from several threads."""

    requests: int = 0
    pages: int = 0
    throttled: int = 0
    retries: int = 0
    bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add to the named counters."""
        with self._lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        with self._lock:
            return {n: getattr(self, n) for n in ("requests", "pages", "throttled", "retries", "bytes")}


class Throttle:
    """The concurrency of F&O requests: lowered on 429s, raised again while requests succeed."""
    def __init__(
        self,
        max_concurrency: int,
        min_concurrency: int = 1,
        clock=time.monotonic,
    ):
        self.max = max(1, min(max_concurrency, MAX_FO_CONCURRENCY))
        self.min = max(1, min(min_concurrency, self.max))
        self.limit = float(self.max)
        self.counters = Counters()
        self._clock = clock
        self._in_flight = 0
        self._paused_until = 0.0
        self._generation = 0  # bumped by every decrease: tells a new 429 from one more of the same storm
        self._cond = threading.Condition()

    @property
    def in_flight(self) -> int:
        """Requests running now."""
        return self._in_flight

    def acquire(self, deadline: float | None = None) -> int | None:
        """Wait for a slot (and for any pause to end); None when ``deadline`` (monotonic) passes first.

        Returns the ticket to hand to ``throttled`` if this request is answered 429.
        """
        with self._cond:
            while True:
                now = self._clock()
                wait = self._paused_until - now
                if wait <= 0 and self._in_flight < int(self.limit):
                    self._in_flight += 1
                    self.counters.add(requests=1)
                    return self._generation
                if deadline is not None and now >= deadline:
                    return None
                timeout = wait if wait > 0 else None
                if deadline is not None:
                    timeout = min(timeout or deadline - now, deadline - now)
                self._cond.wait(timeout)

    def release(self, ok: bool = True, nbytes: int = 0) -> None:
        """End a request: a success may raise the limit by one (additive increase)."""
        with self._cond:
            self._in_flight -= 1
            self.counters.add(bytes=nbytes)
            if ok and self.limit < self.max:
                # Additive increase: one more slot after roughly one round of successful requests.
                self.limit = min(self.max, self.limit + 1.0 / self.limit)
            self._cond.notify_all()

    def throttled(self, retry_after: str | None, default_s: float, ticket: int) -> float:
        """Record a 429: pause everyone until Retry-After, halve the concurrency. Returns the pause."""
        pause = parse_retry_after(retry_after)
        if pause is None:
            # No Retry-After: the default, with jitter so parallel processes do not return in lockstep.
            pause = default_s * random.uniform(1.0, 1.25)
        with self._cond:
            now = self._clock()
            # A storm of 429s answers requests that were all sent before the first of them was seen:
            # halve once per storm (for requests sent since the last decrease), not once per 429.
            if ticket == self._generation:
                self.limit = max(float(self.min), self.limit / 2)
                self._generation += 1
            self._paused_until = max(self._paused_until, now + pause)
            self.counters.add(throttled=1)
            self._cond.notify_all()
        return pause

    def retried(self) -> None:
        """Count a retried request."""
        self.counters.add(retries=1)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


_BUDGETS: dict[str, Throttle] = {}
_BUDGETS_LOCK = threading.Lock()


def budget_for(fo: FoSettings) -> Throttle:
    """The process-wide budget of one environment (keyed by its base URL)."""
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get(fo.base_url)
        if budget is None:
            budget = Throttle(fo.max_concurrency, fo.min_concurrency)
            _BUDGETS[fo.base_url] = budget
        return budget
