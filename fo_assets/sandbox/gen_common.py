"""Shared helpers of the data generators: seeded streams, vectorized picks, ids and amounts."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from .config import SandboxConfig
from .schema import ENUMS, FieldDef
from .values import EMPTY_DATE, EMPTY_UTC, day_seconds

Columns = dict[str, np.ndarray]

# Country and accounting currency of the demo legal entities; any other company looks American.
COMPANY_LOCALE = {"usmf": ("USA", "USD"), "demf": ("DEU", "EUR"), "gbsi": ("GBR", "GBP")}
# Reporting currency is USD: accounting amount times this rate (as a fraction, so it stays exact).
REPORTING_RATE = {"USD": (1, 1), "EUR": (108, 100), "GBP": (127, 100)}
SCALE6 = 10**6


def locale(company: str) -> tuple[str, str]:
    return COMPANY_LOCALE.get(company, ("USA", "USD"))


def rng_for(cfg: SandboxConfig, *parts: object) -> np.random.Generator:
    """One independent, stable stream per (seed, entity, company...): entities generate in any order."""
    return np.random.default_rng([cfg.seed] + [zlib.crc32(str(p).encode()) for p in parts])


def obj(values: Sequence[object]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def pick(rng: np.random.Generator, pool: Sequence[object], n: int, p: Sequence[float] | None = None) -> np.ndarray:
    chosen = rng.choice(len(pool), n, p=p)
    return obj(pool)[chosen]


def ids(fmt: str, n: int, start: int = 1) -> np.ndarray:
    return obj([fmt.format(i) for i in range(start, start + n)])


def amounts(rng: np.random.Generator, n: int, low: float, high: float, decimals: int = 2) -> np.ndarray:
    """Random amounts in 10**-6 units with the given number of decimals."""
    step = 10 ** (6 - decimals)
    return rng.integers(int(low * 10**decimals), int(high * 10**decimals), n, dtype=np.int64) * step


def with_empty(rng: np.random.Generator, values: np.ndarray, p_empty: float, p_null: float = 0.0) -> np.ndarray:
    """Blank some string values: F&O sends unset strings as "" and, now and then, as null."""
    out = values.copy()
    draw = rng.random(len(values))
    out[draw < p_empty] = ""
    out[draw >= 1 - p_null] = None
    return out


def recent_days(cfg: SandboxConfig, rng: np.random.Generator, n: int) -> np.ndarray:
    """Sorted epoch seconds (noon) of X++ dates spread over the ``days`` days ending at the anchor."""
    back = np.sort(rng.integers(0, cfg.days, n))[::-1]
    return day_seconds(cfg.anchor) - back.astype(np.int64) * 86_400


def sometimes_empty_date(rng: np.random.Generator, values: np.ndarray, p_empty: float) -> np.ndarray:
    out = values.copy()
    out[rng.random(len(values)) < p_empty] = EMPTY_DATE
    return out


def per_row_counts(rng: np.random.Generator, n: int, low: int, high: int) -> tuple[np.ndarray, np.ndarray]:
    """Line counts per header and each line's 1-based number within its header."""
    counts = rng.integers(low, high + 1, n)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return counts, np.arange(counts.sum()) - starts + 1


def fill_extra(rng: np.random.Generator, fields: Sequence[FieldDef], n: int) -> Columns:
    """Plausible values for the long tail of fields of wide entities (mostly blank, as in real tenants)."""
    out: Columns = {}
    for f in fields:
        if f.xpp == "Enum":
            out[f.name] = pick(rng, ENUMS[f.enum or ""], n, None)
        elif f.storage == "str":
            out[f.name] = with_empty(rng, pick(rng, ("A1", "STD", "Default", "N/A", "X-02"), n), 0.7, 0.05)
        elif f.storage == "dec":
            out[f.name] = np.where(rng.random(n) < 0.7, 0, amounts(rng, n, 0, 5_000)).astype(np.int64)
        elif f.xpp == "Date":
            out[f.name] = np.full(n, EMPTY_DATE, dtype=np.int64)
        elif f.xpp == "UtcDateTime":
            out[f.name] = np.full(n, EMPTY_UTC, dtype=np.int64)
        else:
            out[f.name] = rng.integers(0, 60, n).astype(np.int64)
    return out


def concat(parts: list[Columns]) -> Columns:
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
