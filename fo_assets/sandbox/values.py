"""Storage <-> F&O JSON value conversions.

Columns are held compactly (int64 epoch seconds for dates and instants, int64 scaled by 10**scale for
Real amounts, object arrays for strings and enum symbols); these functions turn them into exactly the
JSON F&O sends: dates at noon UTC, the 1900-01-01 sentinels, and amounts as JSON numbers with every
decimal digit (via ``orjson.Fragment``, since a float would lose them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import numpy as np
import orjson

from .schema import ENUMS, FieldDef

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
EMPTY_DATE = int((dt.datetime(1900, 1, 1, 12, tzinfo=dt.UTC) - EPOCH).total_seconds())
EMPTY_UTC = int((dt.datetime(1900, 1, 1, tzinfo=dt.UTC) - EPOCH).total_seconds())


def day_seconds(day: dt.date) -> int:
    """Epoch seconds of an X++ date as F&O serves it: noon UTC."""
    return (day.toordinal() - dt.date(1970, 1, 1).toordinal()) * 86_400 + 43_200


@lru_cache(maxsize=1 << 16)
def format_time(seconds: int) -> str:
    return (EPOCH + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def decimal_fragments(units: np.ndarray, scale: int) -> list[orjson.Fragment]:
    """Int64 units as exact JSON numbers: ``98765432109876123457, 6`` -> ``98765432109876.123457``.

    Trailing zeros are dropped as F&O does; vectorized, since pages hold 10,000 rows.
    """
    whole, frac = np.divmod(np.abs(units), 10**scale)
    signs = np.where(units < 0, "-", "").tolist()
    return [
        orjson.Fragment(f"{s}{w}.{f:0{scale}d}".rstrip("0").rstrip(".") if f else f"{s}{w}")
        for s, w, f in zip(signs, whole.tolist(), frac.tolist())
    ]


def renderer(field: FieldDef) -> Callable[[np.ndarray], list[Any]]:
    """A function from a column slice to JSON-ready values."""
    if field.storage == "time":
        return lambda values: [format_time(v) for v in values.tolist()]
    if field.storage == "dec":
        scale = field.scale or 0
        return lambda values: decimal_fragments(values, scale)
    return lambda values: values.tolist()


def parse_time(text: str) -> int:
    """An ISO 8601 instant (``2026-06-01T00:00:00Z``, offsets and fractions allowed) -> epoch seconds."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"date-time {text!r} has no time zone (F&O expects Z or an offset)")
    return int((value - EPOCH).total_seconds())


def decimal_units(value: Any, scale: int) -> int:
    """A number (int, Decimal, or its text) as an int scaled by 10**scale; more digits are an error."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    units = number.scaleb(scale)
    if units != units.to_integral_value():
        raise ValueError(f"{value!r} has more than {scale} decimal places")
    return int(units)


def to_storage(field: FieldDef, value: Any) -> Any:
    """A JSON value as F&O would accept it on write -> the column's storage value (used by changes)."""
    if field.storage == "str":
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{field.name} takes a string, got {value!r}")
        if field.xpp == "Enum" and value not in ENUMS[field.enum or ""]:
            raise ValueError(f"{field.name}: {value!r} is not a symbol of enum {field.enum} {ENUMS[field.enum or '']}")
        return value
    if field.storage == "dec":
        return decimal_units(value, field.scale or 0)
    if field.storage == "time":
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return day_seconds(value)
        seconds = parse_time(value.isoformat() if isinstance(value, dt.datetime) else str(value))
        return seconds - seconds % 86_400 + 43_200 if field.xpp == "Date" else seconds
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field.name} takes an integer, got {value!r}")
    return value
