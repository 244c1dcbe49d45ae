"""Dimension display values split per the configured format, vectorised and row by row alike."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fo_assets.catalog import DimensionField
from fo_assets.dynamics.dimensions import add_dimension_columns, parse_display_value, split_column
from fo_assets.settings import DimensionFormats

LEDGER = ("MainAccount", "BusinessUnit", "Department", "CostCenter")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("605140-001-02", ["605140", "001", "02", None]),
        ("605140-001-02-", ["605140", "001", "02", None]),  # trailing delimiter
        ("605140--022-", ["605140", None, "022", None]),  # blank segments
        ("605140-001-02-7-", ["605140", "001", "02", "7"]),  # trailing delimiter after the last dimension
        ("DAT\\-0000000002-x", ["DAT-0000000002", "x", None, None]),  # escaped delimiter
        ("a\\\\-b", ["a\\", "b", None, None]),  # an escaped backslash before a real delimiter
        ("", [None, None, None, None]),
        (None, [None, None, None, None]),
    ],
)
def test_documented_shapes(value, expected):
    assert parse_display_value(value, LEDGER, "-") == dict(zip(LEDGER, expected))
    split = split_column(pa.array([value], pa.string()), "LedgerAccount", LEDGER, "-")
    assert [split.columns[f"LedgerAccount_{n}"][0].as_py() for n in LEDGER] == expected
    assert split.unparseable == 0


def test_more_segments_than_the_format_are_null_and_counted():
    assert parse_display_value("1-2-3-4-5", LEDGER, "-") is None
    split = split_column(pa.array(["1-2-3-4-5", "1-2"]), "L", LEDGER, "-")
    assert split.unparseable == 1
    assert [split.columns["L_MainAccount"][i].as_py() for i in range(2)] == [None, "1"]


def test_counterparty_accounts_are_not_split():
    values = pa.array(["605140-001", "V-0001", "C-1-2-3-4-5"])
    types = pa.array(["Ledger", "Vendor", "Customer"])
    split = split_column(values, "OffsetAccount", LEDGER, "-", types)
    assert split.columns["OffsetAccount_MainAccount"].to_pylist() == ["605140", None, None]
    assert split.unparseable == 0  # a counterparty account is not a malformed dimension value


segment = st.text(alphabet="ab-\\|", max_size=4)


@given(st.lists(st.one_of(st.none(), st.lists(segment, max_size=6).map("-".join)), max_size=30),
       st.sampled_from(["-", "|"]), st.integers(1, 5))
def test_the_vectorised_split_matches_the_row_parser(values, delimiter, width):
    names = tuple(f"D{i}" for i in range(width))
    split = split_column(pa.array(values, pa.string()), "F", names, delimiter)
    parsed = [parse_display_value(v, names, delimiter) for v in values]
    for i, row in enumerate(parsed):
        got = {n: split.columns[f"F_{n}"][i].as_py() for n in names}
        assert got == (row or dict.fromkeys(names)), values[i]
    assert split.unparseable == sum(p is None for p in parsed)


@given(st.lists(st.text(alphabet="ab7 -", max_size=5), min_size=1, max_size=4))
def test_escaping_round_trips(segments):
    names = tuple(f"D{i}" for i in range(len(segments)))
    value = "-".join(s.replace("\\", "\\\\").replace("-", "\\-") for s in segments)
    parsed = parse_display_value(value, names, "-")
    assert parsed == {n: s or None for n, s in zip(names, segments)}


def test_columns_are_appended_per_configured_format():
    formats = DimensionFormats(delimiter="|", default=("BusinessUnit", "Department"))
    table = pa.table({"Id": [1, 2], "DefaultDimensionDisplayValue": ["001|022", "|7"]})
    dimensions = (DimensionField("DefaultDimensionDisplayValue", "default"),)
    out, unparseable = add_dimension_columns(table, dimensions, formats)
    assert out.column_names == ["Id", "DefaultDimensionDisplayValue", "DefaultDimensionDisplayValue_BusinessUnit",
                                "DefaultDimensionDisplayValue_Department"]
    assert out.column("DefaultDimensionDisplayValue_BusinessUnit").to_pylist() == ["001", None]
    assert out.column("DefaultDimensionDisplayValue_Department").to_pylist() == ["022", "7"]
    assert unparseable == 0
