"""The shared throttle budget: one 429 pauses everyone, AIMD between bounds, never above the cap."""

from __future__ import annotations

import email.utils
import threading
import time
from typing import Callable

import pytest

from fo_assets.dynamics.throttle import Throttle, parse_retry_after


def run_threads(target: Callable[[], None], count: int) -> None:
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)


def test_retry_after_in_seconds_or_as_an_http_date():
    assert parse_retry_after("7") == 7.0
    now = time.time()
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None and parse_retry_after("") is None


def test_a_429_pauses_every_request_until_retry_after():
    budget = Throttle(8)
    budget.throttled("1", 30, budget.acquire())
    budget.release(ok=False)
    started = time.monotonic()
    acquired: list[float] = []

    def worker() -> None:
        budget.acquire()
        acquired.append(time.monotonic() - started)
        budget.release()

    run_threads(worker, 4)
    assert len(acquired) == 4 and min(acquired) >= 0.95


def test_the_default_wait_applies_without_retry_after_and_the_deadline_is_kept():
    budget = Throttle(4)
    pause = budget.throttled(None, 10, budget.acquire())
    assert 10 <= pause <= 12.5  # the default with jitter
    assert budget.acquire(deadline=time.monotonic() + 0.1) is None  # paused past the caller's deadline


def storm(budget: Throttle, size: int) -> None:
    """``size`` requests in flight together, all answered 429."""
    tickets = [budget.acquire() for _ in range(size)]
    for ticket in tickets:
        budget.throttled("0", 0, ticket)
        budget.release(ok=False)


def test_concurrency_halves_once_per_storm_and_grows_back_additively():
    budget = Throttle(8, min_concurrency=2)
    storm(budget, 5)
    assert budget.limit == 4
    storm(budget, 3)
    assert budget.limit == 2
    for _ in range(200):
        budget.acquire()
        budget.release()
    assert budget.limit == 8  # back up, and no further
    for _ in range(5):
        storm(budget, 1)
    assert budget.limit == 2  # never below the minimum


def test_in_flight_never_exceeds_the_limit_or_fs_52():
    budget = Throttle(100)
    assert budget.max == 52
    budget = Throttle(3)
    peak = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal peak
        for _ in range(20):
            budget.acquire()
            with lock:
                peak = max(peak, budget.in_flight)
            time.sleep(0.001)
            budget.release()

    run_threads(worker, 10)
    assert peak == 3 and budget.in_flight == 0
    assert budget.counters.requests == 200
