"""Resident memory over time, and whether it grew once the process had warmed up."""

from __future__ import annotations

import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# Growth below this is noise (allocator arenas, caches filling once); above it, a leak worth a look.
GROWTH_LIMIT = 0.15
GROWTH_FLOOR_MB = 40.0
# In a shorter run the "warm" quarter is still warm-up (the first runs' imports, pools and caches), so
# growth is not judged.
MIN_MINUTES = 2.0


def rss_mb() -> float:
    """Current resident set size (Linux /proc), or the peak where /proc is missing (macOS)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


@dataclass
class MemoryLog:
    started: float = field(default_factory=time.monotonic)
    samples: list[tuple[float, float]] = field(default_factory=list)  # (minutes since start, MB)

    def sample(self) -> float:
        mb = rss_mb()
        self.samples.append(((time.monotonic() - self.started) / 60, mb))
        return mb

    def verdict(self) -> dict[str, object]:
        """Median of the second quarter (warm) against the last quarter: growth in MB and share."""
        values = [mb for _, mb in self.samples]
        minutes = self.samples[-1][0] if self.samples else 0.0
        if len(values) < 8 or minutes < MIN_MINUTES:
            return {"enough_samples": False, "samples": len(values), "minutes": round(minutes, 2)}
        quarter = len(values) // 4
        warm, last = statistics.median(values[quarter:2 * quarter]), statistics.median(values[-quarter:])
        growth = last - warm
        return {
            "enough_samples": True,
            "start_mb": round(values[0], 1),
            "warm_mb": round(warm, 1),
            "end_mb": round(last, 1),
            "peak_mb": round(max(values), 1),
            "growth_mb": round(growth, 1),
            "growth_share": round(growth / warm, 3),
            "grows": growth > max(GROWTH_FLOOR_MB, GROWTH_LIMIT * warm),
        }
