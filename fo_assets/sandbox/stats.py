"""Counters of what the sandbox served (for tests, benchmarks and the demo)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()  # (path without query, status) -> count
        self.tokens_issued = 0
        self.throttled = 0  # 429s sent
        self.bytes_sent = 0
        self.rows_served = 0
        self.peak_in_flight = 0  # most OData requests being served at once (after service protection)
        self.in_flight = 0  # OData requests being served now (a benchmark samples it over time)
        self.execution_s = 0.0  # server time the latency model charged (0 with it off)

    def record(self, path: str, status: int, body_bytes: int, rows: int = 0) -> None:
        with self._lock:
            self.requests[(path, status)] += 1
            self.bytes_sent += body_bytes
            self.rows_served += rows
            self.throttled += status == 429

    def entered(self, in_flight: int) -> None:
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, in_flight)

    def left(self, seconds: float) -> None:
        with self._lock:
            self.in_flight -= 1
            self.execution_s += seconds

    def count(self, path_prefix: str = "", status: int | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (p, s), n in self.requests.items()
                if p.startswith(path_prefix) and (status is None or s == status)
            )

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": {f"{p} {s}": n for (p, s), n in sorted(self.requests.items())},
                "tokens_issued": self.tokens_issued,
                "throttled": self.throttled,
                "bytes_sent": self.bytes_sent,
                "rows_served": self.rows_served,
                "peak_in_flight": self.peak_in_flight,
                "in_flight": self.in_flight,
                "execution_s": round(self.execution_s, 3),
            }
