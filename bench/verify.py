"""Did a side land the right rows? Its Delta table against the sandbox tenant's ground truth.

The tenant is rebuilt in this process from the sandbox's seed and scale (the generator is
deterministic), so the truth does not come through either pipeline. Compared: the key set, and value
columns exactly (amounts as decimals, text as text).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bench.delta_read import read_delta
from fo_assets.catalog import STANDARD
from fo_assets.sandbox.tenant import Tenant

DECIMAL = pa.decimal128(38, 9)  # wide enough for every F&O amount either side lands, and exact
# The tenant's $metadata gives decimals no precision or scale (as real F&O's does): the sandbox holds six
# decimal places, and 32 digits is X++'s real.
AMOUNT_PRECISION, AMOUNT_SCALE = 32, 6


def decimal_fields(tenant: Tenant, entity_set: str) -> tuple[tuple[str, int, int], ...]:
    """``(name, precision, scale)`` of the entity's amounts."""
    return tuple((f.name, AMOUNT_PRECISION, AMOUNT_SCALE) for f in tenant.fields(entity_set) if f.storage == "dec")


def truth(tenant: Tenant, entity_set: str, fields: Sequence[str],
          window: tuple[dt.date, dt.date] | None = None) -> pa.Table:
    """The tenant's rows (inside ``window`` of the entity's window field) as key columns plus ``fields``."""
    table = tenant.table(entity_set)
    schema = tenant.schema(entity_set)
    rows = np.ones(len(table), dtype=bool)
    if window is not None:
        seconds = table.columns[STANDARD.spec_for(entity_set).window_field]
        start, end = (int(dt.datetime.combine(d, dt.time(), dt.UTC).timestamp()) for d in window)
        rows = (seconds >= start) & (seconds < end)
    columns = {}
    for name in (*schema.keys, *fields):
        field, values = schema.by_name[name], table.columns[name][rows]
        if field.storage == "dec":
            columns[name] = pa.array([Decimal(int(v)).scaleb(-AMOUNT_SCALE) for v in values], DECIMAL)
        else:
            columns[name] = pa.array(values.tolist())
    return pa.table(columns)


def landed(path: Path, names: Sequence[str], column: Callable[[str], str], live: str | None = None) -> pa.Table:
    """The table's current rows with F&O's names (``column`` maps a name to the side's); ``live`` is a
    soft-delete flag column whose true rows are left out."""
    wanted = [column(n) for n in names]
    table = read_delta(path, wanted + ([live] if live else []))
    if live:
        table = table.filter(pc.invert(pc.fill_null(table[live], False)))
    return table.select(wanted).rename_columns(list(names))


def compare(expected: pa.Table, actual: pa.Table, keys: Sequence[str]) -> str:
    """``"ok"``, or what differs (row count, keys, or how many values of which column)."""
    if expected.num_rows != actual.num_rows:
        return f"{actual.num_rows:,} rows, expected {expected.num_rows:,}"
    order = [(k, "ascending") for k in keys]
    expected, actual = expected.sort_by(order), actual.sort_by(order)
    problems = []
    for name in expected.column_names:
        want, got = expected[name], actual[name]
        if pa.types.is_decimal(want.type):
            got = got.cast(DECIMAL)
        else:
            got = got.cast(want.type)
        same = pc.or_kleene(pc.equal(want, got), pc.and_(pc.is_null(want), pc.is_null(got)))
        different = want.length() - pc.sum(pc.fill_null(same, False).cast(pa.int64())).as_py()
        if different:
            problems.append(f"{different:,} {'keys' if name in keys else 'values'} of {name} differ")
    return "; ".join(problems) or "ok"
