"""Storage <-> F&O JSON value conversions.

Columns are held compactly (int64 epoch seconds for dates and instants, int64 in 10**-6 units for
decimals, bool arrays, object arrays for strings, enum symbols and GUIDs); these functions turn them into
exactly the JSON text F&O sends: dates at noon UTC, the 1900-01-01 sentinels, and amounts as JSON numbers
with every decimal digit (a float would lose them).

The real tenant's ``$metadata`` gives decimals no scale; the sandbox holds six decimal places
(``DECIMAL_SCALE``), as F&O's X++ ``real`` amounts do in practice, and refuses writes with more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import numpy as np
import orjson

from .schema import FieldDef, enum_default, enums

DECIMAL_SCALE = 6
UNITS = 10**DECIMAL_SCALE
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
EMPTY_DATE = int((dt.datetime(1900, 1, 1, 12, tzinfo=dt.UTC) - EPOCH).total_seconds())
EMPTY_UTC = int((dt.datetime(1900, 1, 1, tzinfo=dt.UTC) - EPOCH).total_seconds())
EMPTY_GUID = "00000000-0000-0000-0000-000000000000"


def day_seconds(day: dt.date) -> int:
    """Epoch seconds of an X++ date as F&O serves it: noon UTC."""
    return (day.toordinal() - dt.date(1970, 1, 1).toordinal()) * 86_400 + 43_200


def instant_seconds(value: dt.datetime) -> int:
    return int((value - EPOCH).total_seconds())


@lru_cache(maxsize=1 << 16)
def format_time(seconds: int) -> str:
    return (EPOCH + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=1 << 14)
def _fraction(units: int) -> str:
    return f".{units:0{DECIMAL_SCALE}d}".rstrip("0")


def decimal_texts(units: np.ndarray) -> list[str]:
    """Int64 units as exact JSON numbers: ``98765432109876123457`` -> ``98765432109876.123457``.

    Trailing zeros are dropped as F&O does; pages hold 10,000 rows, so the fractions are cached.
    """
    whole, frac = np.divmod(np.abs(units), UNITS)
    return [
        ("-" if negative else "") + (f"{w}{_fraction(f)}" if f else str(w))
        for negative, w, f in zip((units < 0).tolist(), whole.tolist(), frac.tolist())
    ]


@lru_cache(maxsize=1 << 16)
def _json_text(value: str | None) -> str:
    return orjson.dumps(value).decode()


@lru_cache(maxsize=1 << 16)
def _time_text(seconds: int) -> str:
    return f'"{format_time(seconds)}"'


def json_texts(field: FieldDef) -> Callable[[np.ndarray], list[str]]:
    """A function from a column slice to each value's JSON text (as orjson would write it)."""
    if field.storage == "time":
        return lambda values: list(map(_time_text, values.tolist()))
    if field.storage == "dec":
        return decimal_texts
    if field.storage == "int":
        return lambda values: list(map(str, values.tolist()))
    if field.storage == "bool":
        return lambda values: ["true" if v else "false" for v in values.tolist()]
    return lambda values: list(map(_json_text, values.tolist()))


def parse_time(text: str) -> int:
    """An ISO 8601 instant (``2026-06-01T00:00:00Z``, offsets and fractions allowed) -> epoch seconds."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"date-time {text!r} has no time zone (F&O expects Z or an offset)")
    return instant_seconds(value)


def decimal_units(value: Any) -> int:
    """A number (int, Decimal, or its text) in 10**-6 units; more decimal places are an error."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    units = number.scaleb(DECIMAL_SCALE)
    if units != units.to_integral_value():
        raise ValueError(f"{value!r} has more than {DECIMAL_SCALE} decimal places")
    return int(units)


def blank(field: FieldDef) -> Any:
    """What F&O stores for a field nobody set."""
    if field.storage == "time":
        return EMPTY_UTC if field.xpp == "UtcDateTime" else EMPTY_DATE
    if field.enum:
        return enum_default(field.enum)
    if field.storage == "bool":
        return False
    if field.storage == "str":
        return {"Guid": EMPTY_GUID, "Container": None}.get(field.xpp, "")
    return 0


def to_storage(field: FieldDef, value: Any) -> Any:
    """A JSON value as F&O would accept it on write -> the column's storage value (used by changes)."""
    if field.storage == "str":
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{field.name} takes a string, got {value!r}")
        if field.enum and value not in enums()[field.enum]:
            members = list(enums()[field.enum])
            raise ValueError(f"{field.name}: {value!r} is not a symbol of enum {field.enum} {members}")
        return value
    if field.storage == "dec":
        return decimal_units(value)
    if field.storage == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{field.name} takes true or false, got {value!r}")
        return value
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
