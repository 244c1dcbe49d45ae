"""Row ordering with F&O's (SQL Server's) collation, and the order SQL Server does not promise.

Strings compare case-insensitively. A query's order is only determined where its ``$orderby`` is unique
over the result; rows that tie (all rows, without ``$orderby``) come back in whatever order the query plan
gives, which can differ from one request to the next. With offset paging (``$skip`` in the nextLink) that
skips and repeats rows across pages; ``Ordered.for_request`` reproduces it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .schema import FieldDef


def sort_codes(field: FieldDef, column: np.ndarray) -> np.ndarray:
    """Integers that sort like the column does in F&O (nulls and "" first, strings ignoring case)."""
    if field.storage != "str":
        return column.astype(np.int64)
    folded = np.empty(len(column), dtype=object)
    folded[:] = [v.lower() if v else "" for v in column.tolist()]
    _, codes = np.unique(folded, return_inverse=True)
    return codes.astype(np.int64)


def order(
    fields: Mapping[str, FieldDef], columns: Mapping[str, np.ndarray], by: Sequence[tuple[str, bool]], rows: np.ndarray
) -> np.ndarray:
    """``rows`` (positions) reordered by ``by`` = [(field, descending)]; ties keep their given order."""
    return ordered(fields, columns, by, rows).rows


@dataclass(frozen=True)
class Ordered:
    rows: np.ndarray  # positions ordered by $orderby, ties in key order
    stable: bool  # the $orderby is unique over the rows: every request sees this order
    ties: np.ndarray | None = None  # tie group of each position (ascending); None without $orderby: one group

    def for_request(self, rng: np.random.Generator | None) -> np.ndarray:
        """The order one request sees: ties shuffled by ``rng`` (None: the stable key order)."""
        if rng is None or self.stable:
            return self.rows
        if self.ties is None:
            return rng.permutation(self.rows)
        return self.rows[np.lexsort((rng.random(len(self.rows)), self.ties))]


def ordered(
    fields: Mapping[str, FieldDef], columns: Mapping[str, np.ndarray], by: Sequence[tuple[str, bool]], rows: np.ndarray
) -> Ordered:
    """``rows`` ordered by ``by``, and which of them tie (have equal values in every ``by`` field)."""
    if len(rows) < 2:
        return Ordered(rows, stable=True)
    if not by:
        return Ordered(rows, stable=False)
    codes = [sort_codes(fields[name], columns[name][rows]) for name, _ in by]
    keys = [-c if descending else c for c, (_, descending) in zip(codes, by)]
    positions = np.lexsort(keys[::-1])
    new_group = np.zeros(len(rows), dtype=bool)
    for key in keys:
        sorted_key = key[positions]
        new_group[1:] |= sorted_key[1:] != sorted_key[:-1]
    if new_group[1:].all():
        return Ordered(rows[positions], stable=True)
    return Ordered(rows[positions], stable=False, ties=np.cumsum(new_group))
