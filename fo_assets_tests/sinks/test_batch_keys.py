"""The duplicate-key screen of a landed batch, against a plain set of the rows' keys."""

from __future__ import annotations

import decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from fo_assets.sinks.batch_keys import may_have_null_key, repeats_a_key

KEYS = ("Company", "Number", "Line")
_ROW = st.tuples(
    st.sampled_from(["usmf", "demf", None]),
    st.integers(min_value=-3, max_value=3) | st.none() | st.sampled_from([-(2**62), 2**62]),
    st.sampled_from([decimal.Decimal("1"), decimal.Decimal("1.5"), decimal.Decimal("-0.000001"), None]),
)


def _parts(folder: Path, rows: list[tuple], cuts: list[int]) -> list[str]:
    """The rows as Parquet files cut at ``cuts``, as a batch's parts are."""
    table = pa.table({
        "Company": pa.array([r[0] for r in rows], pa.string()),
        "Number": pa.array([r[1] for r in rows], pa.int64()),
        "Line": pa.array([r[2] for r in rows], pa.decimal128(32, 6)),
        "Other": pa.array(range(len(rows)), pa.int64()),
    })
    bounds = [0, *sorted({min(c, len(rows)) for c in cuts}), len(rows)]
    paths = []
    for index, (start, end) in enumerate(zip(bounds, bounds[1:])):
        path = folder / f"part-{index:05d}.parquet"
        pq.write_table(table.slice(start, end - start), path, row_group_size=3)
        paths.append(str(path))
    return paths


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(_ROW, max_size=12), cuts=st.lists(st.integers(0, 12), max_size=2))
def test_a_repeat_is_found_exactly_whatever_the_types_nulls_and_files(tmp_path_factory, rows, cuts) -> None:
    folder = tmp_path_factory.mktemp("parts")
    parts = _parts(folder, rows, cuts)

    # The integer key spans 2**63 with the extreme values: the screen must fall back to dictionaries.
    assert repeats_a_key(parts, KEYS) == (len(set(rows)) < len(rows))
    assert repeats_a_key(parts, KEYS[:1]) == (len({r[0] for r in rows}) < len(rows))


def test_null_keys_are_seen_from_the_statistics(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with_null = _parts(tmp_path / "a", [("usmf", 1, None), ("usmf", 2, decimal.Decimal(1))], [])
    without = _parts(tmp_path / "b", [("usmf", 1, decimal.Decimal(1)), ("demf", 1, decimal.Decimal(1))], [1])

    assert may_have_null_key(with_null, KEYS)
    assert not may_have_null_key(with_null, KEYS[:2])
    assert not may_have_null_key(without, KEYS)
    no_statistics = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"Company": ["usmf"]}), no_statistics, write_statistics=False)
    assert may_have_null_key([str(no_statistics)], ["Company"])  # unknown counts as possible


def test_wide_integer_keys_are_recoded_before_their_codes_overflow(tmp_path: Path) -> None:
    # Each column spans about 2**41 values: their product does not fit in an int64 code.
    a = [0, 2**41, 0, 2**41, 5]
    b = [0, 0, 2**41, 2**41, 0]
    path = tmp_path / "part.parquet"
    pq.write_table(pa.table({"A": pa.array(a, pa.int64()), "B": pa.array(b, pa.int64())}), path)
    assert not repeats_a_key([str(path)], ["A", "B"])
    pq.write_table(pa.table({"A": pa.array(a + [2**41], pa.int64()), "B": pa.array(b + [2**41], pa.int64())}), path)
    assert repeats_a_key([str(path)], ["A", "B"])
