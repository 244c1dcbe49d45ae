"""Shared helpers of the data generators: seeded streams, vectorized picks, ids, amounts, and the full-width
row builder that leaves every field a generator does not fill as F&O leaves an unset field."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from .config import SandboxConfig
from .schema import EntitySchema, FieldDef, enums
from .values import EMPTY_DATE, UNITS, blank, day_seconds

Columns = dict[str, np.ndarray]

# Country, accounting currency and purchase tax rate (percent) of the demo legal entities; any other
# company looks American.
COMPANY_LOCALE = {"usmf": ("USA", "USD", 8), "demf": ("DEU", "EUR", 19), "gbsi": ("GBR", "GBP", 20)}
# Reporting currency is USD: accounting amount times this rate (as a fraction, so it stays exact).
REPORTING_RATE = {"USD": (1, 1), "EUR": (108, 100), "GBP": (127, 100)}
CITIES = {
    "USA": ("Seattle", "Chicago", "Dallas", "Boston"),
    "DEU": ("Berlin", "Hamburg", "München"),
    "GBR": ("London", "Leeds", "Bristol"),
}
# F&O sends unset strings as "", and now and then as null where the property is nullable.
BLANK_NULL_RATE = 0.02


def locale(company: str) -> tuple[str, str, int]:
    return COMPANY_LOCALE.get(company, ("USA", "USD", 8))


def rng_for(cfg: SandboxConfig, *parts: object) -> np.random.Generator:
    """One independent, stable stream per (seed, entity, company...): entities generate in any order."""
    return np.random.default_rng([cfg.seed] + [zlib.crc32(str(p).encode()) for p in parts])


def per_day(cfg: SandboxConfig, rate: float) -> int:
    """Records per company over the ``days`` window at ``rate`` a day (scaled, at least one a day)."""
    return max(1, round(rate * cfg.scale)) * cfg.days


def obj(values: Sequence[object]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def full(value: object, n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    out[:] = [value] * n
    return out


def pick(rng: np.random.Generator, pool: Sequence[object], n: int, p: Sequence[float] | None = None) -> np.ndarray:
    chosen = rng.choice(len(pool), n, p=p)
    return obj(pool)[chosen]


def ids(fmt: str, n: int, start: int = 1) -> np.ndarray:
    return obj([fmt.format(i) for i in range(start, start + n)])


def amounts(rng: np.random.Generator, n: int, low: float, high: float, decimals: int = 2) -> np.ndarray:
    """Random amounts in 10**-6 units with the given number of decimals."""
    step = UNITS // 10**decimals
    return rng.integers(int(low * 10**decimals), int(high * 10**decimals), n, dtype=np.int64) * step


def percent_of(units: np.ndarray, percent: int) -> np.ndarray:
    """``percent`` % of amounts, rounded down to cents (still in 10**-6 units, exact)."""
    cent = UNITS // 100
    return units * percent // 100 // cent * cent


def with_empty(rng: np.random.Generator, values: np.ndarray, p_empty: float, p_null: float = 0.0) -> np.ndarray:
    """Blank some string values: F&O sends unset strings as "" and, now and then, as null."""
    out = values.copy()
    draw = rng.random(len(values))
    out[draw < p_empty] = ""
    out[draw >= 1 - p_null] = None
    return out


def spread_days(cfg: SandboxConfig, n: int) -> np.ndarray:
    """Epoch seconds (noon) of X++ dates, ascending, spread evenly over the ``days`` days ending at the anchor
    (every day gets records when there are at least as many records as days)."""
    back = cfg.days - 1 - (np.arange(n) * cfg.days) // max(n, 1)
    return day_seconds(cfg.anchor) - back.astype(np.int64) * 86_400


def sometimes_empty_date(rng: np.random.Generator, values: np.ndarray, p_empty: float) -> np.ndarray:
    out = values.copy()
    out[rng.random(len(values)) < p_empty] = EMPTY_DATE
    return out


def per_row_counts(rng: np.random.Generator, n: int, low: int, high: int) -> tuple[np.ndarray, np.ndarray]:
    """Line counts per header and each line's 1-based number within its header."""
    counts = rng.integers(low, high + 1, n)
    return counts, numbers_within(counts)


def numbers_within(counts: np.ndarray) -> np.ndarray:
    """1-based position of each line within its group, for groups of the given sizes."""
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(int(counts.sum())) - starts + 1


def concat(parts: Sequence[Columns]) -> Columns:
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _blank_column(field: FieldDef, n: int, rng: np.random.Generator) -> np.ndarray:
    value = blank(field)
    if field.storage in ("int", "dec", "time"):
        return np.full(n, value, dtype=np.int64)
    if field.storage == "bool":
        return np.zeros(n, dtype=bool)
    column = full(value, n)
    if value == "" and field.nullable:
        column[rng.random(n) < BLANK_NULL_RATE] = None
    return column


def _checked(field: FieldDef, values: np.ndarray, entity_set: str) -> np.ndarray:
    if field.storage in ("int", "dec", "time"):
        return values.astype(np.int64, copy=False)
    if field.storage == "bool":
        return values.astype(bool, copy=False)
    values = values if values.dtype == object else obj(values.tolist())
    if field.enum:
        wrong = set(values.tolist()) - set(enums()[field.enum])
        if wrong:
            raise RuntimeError(f"{entity_set}.{field.name}: {sorted(map(str, wrong))} are not members of {field.enum}")
    return values


def build_rows(
    cfg: SandboxConfig, schema: EntitySchema, n: int, given: Mapping[str, np.ndarray], *parts: object
) -> Columns:
    """Every field of ``n`` rows in the schema's order: ``given`` columns as they are, every other field at
    what F&O returns for an unset field ("" or now and then null, 0, the enum's 0-valued member, the
    1900-01-01 sentinels). ``parts`` seed the null sprinkling (usually the company)."""
    unknown = set(given) - set(schema.by_name)
    if unknown:
        raise RuntimeError(f"generator of {schema.entity_set} fills fields the entity lacks: {sorted(unknown)}")
    rng = rng_for(cfg, schema.entity_set, "blank", *parts)
    out: Columns = {}
    for field in schema.fields:
        if field.name in given:
            values = np.asarray(given[field.name])
            if len(values) != n:
                raise RuntimeError(f"{schema.entity_set}.{field.name}: {len(values)} values for {n} rows")
            out[field.name] = _checked(field, values, schema.entity_set)
        else:
            out[field.name] = _blank_column(field, n, rng)
    return out
