"""The latency model: what each OData request costs in server time, and F&O's user-based service
protection limits over a sliding window (concurrent requests, requests, seconds of execution), answered
429 with ``Retry-After`` like the real service. Off unless configured (``SandboxConfig.latency``, the serve
CLI's ``--latency-model``, or the ``/_sandbox/latency`` admin endpoint).

The sandbox has one app registration, so every token belongs to one user: all requests share the limits.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .config import LatencyModel


@dataclasses.dataclass(frozen=True)
class Refusal:
    retry_after: int
    reason: str  # for the 429 message: what was exceeded


class ServiceProtection:
    def __init__(self, model: LatencyModel | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.model = model
        self.in_flight = 0
        self._arrivals: deque[float] = deque()  # admitted requests in the window
        self._executions: deque[tuple[float, float]] = deque()  # (finished at, seconds) in the window

    def configure(self, model: LatencyModel | None) -> None:
        with self._lock:
            self.model = model

    def apply(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Admin form: {"enabled": false} or {"enabled": true, <LatencyModel fields>...}."""
        settings = dict(payload)
        enabled = settings.pop("enabled", True)
        unknown = set(settings) - {f.name for f in dataclasses.fields(LatencyModel)}
        if unknown:
            raise KeyError(f"unknown latency settings {sorted(unknown)}")
        self.configure(LatencyModel(**settings) if enabled else None)
        return dataclasses.asdict(self.model) if self.model else None

    def cost(self, rows: int, body_bytes: int) -> float:
        """Server time of a response: base + per row + per MB of JSON (0 with the model off)."""
        model = self.model
        if model is None:
            return 0.0
        return model.base_s + model.per_row_s * rows + model.per_mb_s * body_bytes / 1_000_000

    def admit(self) -> Refusal | None:
        """Take a place for a request, or say why it is refused and when to retry."""
        with self._lock:
            model = self.model
            if model is None:
                self.in_flight += 1
                return None
            now = self._clock()
            self._expire(now, model.window_s)
            if self.in_flight >= model.max_concurrent:
                return Refusal(1, f"more than {model.max_concurrent} concurrent requests")
            if len(self._arrivals) >= model.max_requests:
                return Refusal(self._wait(self._arrivals[0], now, model), f"more than {model.max_requests} requests")
            used = sum(seconds for _, seconds in self._executions)
            if used >= model.execution_budget_s:
                for finished, seconds in self._executions:
                    used -= seconds
                    if used < model.execution_budget_s:
                        break
                return Refusal(
                    self._wait(finished, now, model),
                    f"more than {model.execution_budget_s:g} seconds of execution time",
                )
            self.in_flight += 1
            self._arrivals.append(now)
            return None

    def release(self, seconds: float) -> None:
        """A request admitted by ``admit`` finished after ``seconds`` of (modelled) server time."""
        with self._lock:
            self.in_flight -= 1
            if self.model is not None:
                self._executions.append((self._clock(), seconds))

    def _expire(self, now: float, window: float) -> None:
        while self._arrivals and self._arrivals[0] <= now - window:
            self._arrivals.popleft()
        while self._executions and self._executions[0][0] <= now - window:
            self._executions.popleft()

    @staticmethod
    def _wait(since: float, now: float, model: LatencyModel) -> int:
        """Whole seconds until an event at ``since`` leaves the sliding window."""
        return max(1, math.ceil(since + model.window_s - now))
