"""SQL generation: identifiers validated and quoted, values only ever as parameters, types exact."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fo_assets.landing import DeleteScope
from fo_assets.sinks import sql

TABLE = sql.TableRef("main", "fo", "vendor_invoice_headers")


def test_identifiers_are_backticked_with_embedded_backticks_doubled() -> None:
    assert sql.quote("dataAreaId") == "`dataAreaId`"
    assert sql.quote("a`b") == "`a``b`"
    assert sql.quote("Vendor Acct O'Brien") == "`Vendor Acct O'Brien`"
    assert sql.DUCKDB.quote('we"ird') == '"we""ird"'


@pytest.mark.parametrize("bad", ["", "a\nb", "tab\there", "nul\x00", "del\x7f", "x" * 256])
def test_bad_identifiers_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        sql.quote(bad)
    with pytest.raises(ValueError):
        sql.DUCKDB.quote(bad)


@pytest.mark.parametrize("bad", ["a/b", "..", "it's", "x y", "a`b", ""])
def test_staged_paths_accept_only_plain_names(bad: str) -> None:
    with pytest.raises(ValueError):
        sql.volume_path_part(bad)
    if "/" not in bad:  # a slash only adds a path level
        with pytest.raises(ValueError):
            sql.read_files(f"/Volumes/main/fo/staging/{bad}/parts")


def test_delete_flags_carry_every_value_as_a_parameter() -> None:
    scope = DeleteScope("window", "us'mf", "InvoiceDate", "2026-06-01", "2026-06-08")
    flags = sql.DeleteFlags(
        "batch-'x", "run-;--", dt.datetime(2026, 6, 1, 8, tzinfo=dt.timezone.utc),
        ("dataAreaId", "HeaderReference"), "dataAreaId",
    )

    statement = sql.flag_deletes(TABLE, scope, flags=flags, parts_folder="/Volumes/main/fo/staging/t/b1/parts",
                                 parents_folder=None)

    for value in ("us'mf", "2026-06-01", "2026-06-08", "batch-'x", "run-;--", "2026-06-01T08:00:00"):
        assert value not in statement.text
    assert {(p.name, p.value, p.type) for p in statement.params} == {
        ("deleted_at", "2026-06-01T08:00:00+00:00", "TIMESTAMP"),
        ("company", "us'mf", "STRING"),
        ("window_start", "2026-06-01", "DATE"),
        ("window_end", "2026-06-08", "DATE"),
        ("batch_id", "batch-'x", "STRING"),
        ("run_id", "run-;--", "STRING"),
    }
    for param in statement.params:
        assert f":{param.name}" in statement.text


def test_a_shared_entity_snapshot_has_no_company_predicate() -> None:
    keys = ("ChartOfAccounts", "MainAccountId")
    flags = sql.DeleteFlags("b", "r", dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc), keys, None)

    statement = sql.flag_deletes(TABLE, DeleteScope("company", None), flags=flags, parts_folder=None, parents_folder=None)

    assert ":company" not in statement.text and "NOT EXISTS" not in statement.text  # empty batch: all gone
    assert "company" not in {p.name for p in statement.params}


def test_arrow_types_map_to_delta_types_and_back() -> None:
    pairs = {
        pa.string(): "string", pa.int64(): "bigint", pa.int32(): "int", pa.bool_(): "boolean",
        pa.float64(): "double", pa.date32(): "date", pa.decimal128(32, 6): "decimal(32,6)",
        pa.timestamp("us", tz="UTC"): "timestamp", pa.timestamp("us"): "timestamp_ntz",
    }
    for arrow, delta in pairs.items():
        assert sql.column_type(arrow) == delta
        assert sql.arrow_type(delta.upper()) == arrow
    with pytest.raises(ValueError, match="'Attachments'"):
        sql.column_type(pa.list_(pa.string()), "Attachments")
    with pytest.raises(ValueError, match="38"):
        sql.column_type(pa.decimal256(40, 2), "Huge")


def test_vacuum_retention_must_be_whole_hours() -> None:
    assert sql.vacuum(TABLE, 720).text.endswith("RETAIN 720 HOURS")
    for bad in (-1, 1.5, "168; DROP TABLE x"):
        with pytest.raises(ValueError):
            sql.vacuum(TABLE, bad)  # type: ignore[arg-type]


_DUCK_ROW = st.tuples(st.sampled_from(["a", "b", None]), st.integers(0, 2), st.integers(0, 3), st.sampled_from("pq"),
                      st.integers(0, 1))


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(_DUCK_ROW, max_size=10))
def test_deduplicating_only_repeated_keys_picks_the_rows_newest_per_key_picks(rows) -> None:
    table = pa.table({
        "k": pa.array([r[0] for r in rows], pa.string()), "n": pa.array([r[1] for r in rows], pa.int64()),
        "_fo_extracted_at": pa.array([r[2] for r in rows], pa.int64()),
        "_fo_source_url": pa.array([r[3] for r in rows], pa.string()), "v": pa.array([r[4] for r in rows], pa.int64()),
    })
    columns, keys = table.column_names, ("k", "n")
    con = duckdb.connect()
    con.register("batch", table)
    con.execute(f"CREATE TABLE repeated AS {sql.duplicate_keys(sql.DUCKDB, 'batch', keys)}")

    def run(query: str) -> list[tuple]:
        return sorted(con.execute(query).fetchall(), key=repr)

    whole = run(sql.newest_per_key(sql.DUCKDB, "batch", columns, keys))
    assert run(sql.deduplicated(sql.DUCKDB, "batch", duplicates="repeated", columns=columns, keys=keys)) == whole
    if len({(r[0], r[1]) for r in rows}) == len(rows):
        assert run(sql.deduplicated(sql.DUCKDB, "batch", duplicates=None, columns=columns, keys=keys)) == whole
