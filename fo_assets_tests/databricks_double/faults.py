"""Faults a test arms on the double; each fires for the next N matching requests, then disarms."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Callable


@dataclass
class _Armed:
    remaining: int
    pattern: re.Pattern[str] | None = None
    error_code: str = ""
    message: str = ""
    seconds: float = 0.0
    status: int = 0

    def fire(self, text: str = "") -> bool:
        if self.remaining <= 0 or (self.pattern is not None and not self.pattern.search(text)):
            return False
        self.remaining -= 1
        return True


class Faults:
    def __init__(self, expire_tokens: Callable[[], None]):
        self._lock = threading.Lock()
        self._failures: list[_Armed] = []
        self._delays: list[_Armed] = []
        self._uploads: list[_Armed] = []
        self._throttles: list[_Armed] = []
        self._interlopers: list[_Armed] = []
        self._expire_tokens = expire_tokens

    def fail_statements(
        self, pattern: str, times: int = 1, error_code: str = "BAD_REQUEST", message: str = "injected failure"
    ) -> None:
        """The next ``times`` statements whose text matches ``pattern`` end FAILED without running."""
        with self._lock:
            self._failures.append(_Armed(times, re.compile(pattern), error_code, message))

    def delay_statements(self, pattern: str, seconds: float, times: int = 1) -> None:
        """The next matching statements wait ``seconds`` before running (cancellable meanwhile)."""
        with self._lock:
            self._delays.append(_Armed(times, re.compile(pattern), seconds=seconds))

    def concurrent_writes(self, pattern: str, times: int = 1, operation: str = "WRITE") -> None:
        """While each of the next ``times`` matching statements runs, another writer commits ``operation``
        (WRITE, OPTIMIZE or METADATA) to the table it writes: it then conflicts as Delta decides."""
        with self._lock:
            self._interlopers.append(_Armed(times, re.compile(pattern), message=operation))

    def fail_uploads(self, times: int = 1, status: int = 503, path_pattern: str = "") -> None:
        """The next ``times`` Files API uploads (to a volume path matching ``path_pattern``) answer
        ``status`` and store nothing."""
        with self._lock:
            self._uploads.append(_Armed(times, re.compile(path_pattern), status=status))

    def throttle(self, times: int = 1, retry_after: int = 1, path_pattern: str = r"^/api/") -> None:
        """The next matching API requests answer 429 with ``Retry-After``."""
        with self._lock:
            self._throttles.append(_Armed(times, re.compile(path_pattern), seconds=retry_after))

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working now (the client must fetch a new one)."""
        self._expire_tokens()

    def statement_failure(self, text: str) -> tuple[str, str] | None:
        with self._lock:
            for armed in self._failures:
                if armed.fire(text):
                    return armed.error_code, armed.message
        return None

    def statement_delay(self, text: str) -> float:
        with self._lock:
            return next((armed.seconds for armed in self._delays if armed.fire(text)), 0.0)

    def interloper(self, text: str) -> str | None:
        with self._lock:
            return next((armed.message for armed in self._interlopers if armed.fire(text)), None)

    def upload_failure(self, path: str) -> int | None:
        with self._lock:
            return next((armed.status for armed in self._uploads if armed.fire(path)), None)

    def throttled(self, path: str) -> int | None:
        with self._lock:
            return next((int(armed.seconds) for armed in self._throttles if armed.fire(path)), None)
