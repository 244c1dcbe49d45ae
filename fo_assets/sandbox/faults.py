"""Faults on demand: throttling, outages, dropped connections, warm-up, latency, token revocation.

Counted faults apply to the next N OData requests (``/data`` and ``/Metadata``), in arrival order.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from typing import Any


class Faults:
    def __init__(self, seed: int, revoke: Callable[[], int]) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._revoke = revoke
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._throttle_left = 0
            self._retry_after: float | None = None
            self._unavailable_left = self._drop_left = 0
            self.concurrency: int | None = None
            self._warmup_s, self.latency_s = 0.0, 0.0

    # -- controls ------------------------------------------------------------------------------------

    def throttle(self, n: int = 1, retry_after: float | None = 1) -> None:
        """Answer the next ``n`` requests 429, with ``Retry-After: <s>`` or (None) without the header."""
        with self._lock:
            self._throttle_left, self._retry_after = n, retry_after

    def concurrency_limit(self, n: int | None) -> None:
        """Answer 429 (Retry-After: 1) to any OData request beyond ``n`` in flight; None lifts it."""
        self.concurrency = n

    def unavailable(self, n: int = 1) -> None:
        """Answer the next ``n`` requests 503."""
        with self._lock:
            self._unavailable_left = n

    def drop_connection(self, n: int = 1) -> None:
        """For the next ``n`` requests: send the headers and part of the body, then close the connection."""
        with self._lock:
            self._drop_left = n

    def warmup(self, seconds: float) -> None:
        """Delay the next OData request by ``seconds``, like the first call after an AOS restart."""
        with self._lock:
            self._warmup_s = seconds

    def latency(self, seconds: float) -> None:
        """Delay every OData request (lets concurrent requests overlap, for the concurrency limit)."""
        self.latency_s = seconds

    def revoke_tokens(self) -> int:
        """Invalidate every token issued so far; returns how many."""
        return self._revoke()

    def apply(self, spec: dict[str, Any]) -> None:
        """The admin endpoint's JSON form: {"throttle": {"n": 3, "retry_after": 2}, "revoke_tokens": true...}."""
        actions: dict[str, Callable[..., Any]] = {
            "throttle": self.throttle,
            "unavailable": self.unavailable,
            "drop_connection": self.drop_connection,
            "concurrency_limit": self.concurrency_limit,
            "warmup": self.warmup,
            "latency": self.latency,
        }
        for name, arg in spec.items():
            if name == "reset":
                self.reset()
            elif name == "revoke_tokens":
                self.revoke_tokens()
            elif name not in actions:
                raise KeyError(f"unknown fault {name!r}; known: {sorted(actions) + ['reset', 'revoke_tokens']}")
            elif isinstance(arg, dict):
                actions[name](**arg)
            else:
                actions[name](arg)

    # -- consumed by the server ----------------------------------------------------------------------

    def take_warmup(self) -> float:
        with self._lock:
            seconds, self._warmup_s = self._warmup_s, 0.0
        return seconds

    def take_throttle(self) -> tuple[bool, int | None]:
        with self._lock:
            if self._throttle_left <= 0:
                return False, None
            self._throttle_left -= 1
            return True, None if self._retry_after is None else math.ceil(self._retry_after)

    def take_unavailable(self) -> bool:
        with self._lock:
            hit = self._unavailable_left > 0
            self._unavailable_left -= hit
        return hit

    def take_drop(self) -> float | None:
        """The fraction of the body to send before closing, or None to send it whole."""
        with self._lock:
            if self._drop_left <= 0:
                return None
            self._drop_left -= 1
            return self._rng.uniform(0.2, 0.8)
