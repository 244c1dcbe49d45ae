"""Row ordering with F&O's (SQL Server's) collation: strings compare case-insensitively."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .schema import FieldDef


def sort_codes(field: FieldDef, column: np.ndarray) -> np.ndarray:
    """Integers that sort like the column does in F&O (nulls and "" first, strings ignoring case)."""
    if field.storage != "str":
        return column
    folded = np.empty(len(column), dtype=object)
    folded[:] = [v.lower() if v else "" for v in column.tolist()]
    _, codes = np.unique(folded, return_inverse=True)
    return codes.astype(np.int64)


def order(
    fields: Mapping[str, FieldDef], columns: Mapping[str, np.ndarray], by: Sequence[tuple[str, bool]], rows: np.ndarray
) -> np.ndarray:
    """``rows`` (positions) reordered by ``by`` = [(field, descending)]; ties keep their given order."""
    if not by or len(rows) < 2:
        return rows
    keys = []
    for name, descending in reversed(by):
        codes = sort_codes(fields[name], columns[name][rows])
        keys.append(-codes if descending else codes)
    return rows[np.lexsort(keys)]
