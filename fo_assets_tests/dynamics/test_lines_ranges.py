"""Pure parts of line reads: RecId ranges and exact matches behind F&O's wildcard."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from fo_assets.dynamics.lines import value_ranges
from fo_assets.dynamics.reading import exact_matches
from fo_assets.dynamics.schema import FieldInfo


@given(st.lists(st.integers(1, 10**12), min_size=0, max_size=300, unique=True), st.integers(1, 16),
       st.none() | st.integers(1, 50))
def test_ranges_cover_every_value_and_nothing_between_groups_far_apart(values, parts, most):
    sorted_values = np.array(sorted(values), dtype=np.int64)
    ranges = value_ranges(sorted_values, parts, most)
    assert all(low <= high for low, high in ranges)
    assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:])), "ranges are disjoint and ordered"
    for value in values:
        assert sum(low <= value <= high for low, high in ranges) == 1
    if len(values) >= parts:
        assert len(ranges) >= parts, "enough ranges to keep the requests in flight"
    if most is not None:
        assert all(sum(low <= v <= high for v in values) <= most for low, high in ranges), "about a page each"


def test_a_wide_gap_between_recids_is_not_read():
    usmf = np.arange(5_637_144_576, 5_637_144_576 + 1_000, 2)
    later = np.arange(5_637_900_000, 5_637_900_000 + 1_000, 2)
    ranges = value_ranges(np.concatenate([usmf, later]), 1)
    assert ranges == [(int(usmf[0]), int(usmf[-1])), (int(later[0]), int(later[-1]))]


def test_exact_matches_drop_what_a_wildcard_also_matched():
    text = FieldInfo("PurchaseOrderNumber", "Edm.String", "string")
    line = FieldInfo("LineNumber", "Edm.Int64", "int64")
    table = pa.table({
        "PurchaseOrderNumber": ["PO*1", "PO-11", "po*1", "PO*12"],
        "LineNumber": [1, 1, 2, 1],
    })
    kept = exact_matches(table, [[(text, "PO*1"), (line, "1")], [(text, "PO*1"), (line, "2")]])
    # F&O compares text ignoring case, so po*1 is the same order as PO*1.
    assert kept.to_pylist() == [{"PurchaseOrderNumber": "PO*1", "LineNumber": 1},
                                {"PurchaseOrderNumber": "po*1", "LineNumber": 2}]
    amount = FieldInfo("InvoiceLineNumber", "Edm.Decimal", "decimal")
    table = pa.table({"HeaderReference": ["A*"], "InvoiceLineNumber": pa.array([Decimal("1.000000")], pa.decimal128(32, 6))})
    assert exact_matches(table, [[(FieldInfo("HeaderReference", "Edm.String", "string"), "A*"),
                                  (amount, "1")]]).num_rows == 1
