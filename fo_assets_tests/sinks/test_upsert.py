"""Load semantics, run against both sinks: local Delta and Databricks (the double, via the real SDK)."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import pyarrow as pa

from fo_assets.catalog import STANDARD
from fo_assets.landing import DeleteScope
from fo_assets.sinks.base import KeyProfile, Sink
from fo_assets_tests.sinks.batches import at, current, land, vendors

VENDORS = STANDARD.spec_for("VendorsV2")
USMF = DeleteScope("company", "usmf")


def test_first_load_inserts_every_row_with_its_audit_columns(sink: Sink, tmp_path: Path) -> None:
    page = vendors([("usmf", "V1", "10.5"), ("usmf", "V2", None)])
    batch = land(tmp_path, VENDORS, [(page, at(1, 8))], scopes=[USMF])

    result = sink.upsert(batch, VENDORS)

    assert (result.inserted, result.updated, result.deleted) == (2, 0, 0)
    assert result.table_name.endswith("vendors_v2")
    assert dict(result.columns)["CreditLimit"] == "decimal(32,6)"
    assert dict(result.columns)["_fo_extracted_at"] == "timestamp"
    rows = current(sink.read(VENDORS), "VendorAccountNumber")
    assert set(rows) == {("V1",), ("V2",)}
    assert rows[("V1",)]["CreditLimit"] == decimal.Decimal("10.5")
    assert rows[("V2",)]["CreditLimit"] is None
    assert rows[("V1",)]["_fo_batch_id"] == batch.batch_id
    assert rows[("V1",)]["_fo_run_id"] == "run-1"
    assert rows[("V1",)]["_fo_extracted_at"] == at(1, 8)
    assert rows[("V1",)]["_fo_source_url"] == "https://fo.test/data/VendorsV2?page=0"
    assert rows[("V1",)]["_fo_deleted"] is False


def test_reloading_the_same_batch_changes_nothing(sink: Sink, tmp_path: Path) -> None:
    batch = land(tmp_path, VENDORS, [(vendors([("usmf", "V1", "1"), ("usmf", "V2", "2")]), at(1))], scopes=[USMF])
    sink.upsert(batch, VENDORS)
    before = sink.read(VENDORS)

    again = sink.upsert(batch, VENDORS)

    assert (again.inserted, again.updated, again.deleted) == (0, 0, 0)
    after = sink.read(VENDORS)
    assert after.num_rows == 2
    assert current(after, "VendorAccountNumber") == current(before, "VendorAccountNumber")


def test_a_newer_batch_updates_rows_and_counts_each_rewritten_row(sink: Sink, tmp_path: Path) -> None:
    first = land(tmp_path, VENDORS, [(vendors([("usmf", "V1", "1"), ("usmf", "V2", "2")]), at(1))])
    sink.upsert(first, VENDORS)
    newer = land(tmp_path, VENDORS, [(vendors([("usmf", "V1", "99"), ("usmf", "V3", "3")]), at(2))])

    result = sink.upsert(newer, VENDORS)

    assert (result.inserted, result.updated, result.deleted) == (1, 1, 0)
    rows = current(sink.read(VENDORS), "VendorAccountNumber")
    assert rows[("V1",)]["CreditLimit"] == decimal.Decimal("99")
    assert rows[("V1",)]["_fo_batch_id"] == newer.batch_id
    assert rows[("V2",)]["_fo_batch_id"] == first.batch_id  # not in the newer batch, no scope: untouched


def test_duplicate_keys_in_a_batch_resolve_to_the_newest_then_a_fixed_tiebreak(sink: Sink, tmp_path: Path) -> None:
    # $skip paging over changing data repeats rows: V1 read at 08:00 and again at 09:00 (newest wins);
    # V2 twice in one instant on two pages (the greater source URL, page 1, wins).
    batch = land(tmp_path, VENDORS, [
        (vendors([("usmf", "V1", "1"), ("usmf", "V2", "20")]), at(1, 8)),
        (vendors([("usmf", "V1", "2")]), at(1, 9)),
        (vendors([("usmf", "V2", "21")]), at(1, 8)),
    ])

    result = sink.upsert(batch, VENDORS)

    assert result.inserted == 2
    rows = current(sink.read(VENDORS), "VendorAccountNumber")
    assert rows[("V1",)]["CreditLimit"] == decimal.Decimal("2")
    assert rows[("V2",)]["CreditLimit"] == decimal.Decimal("21")
    assert rows[("V2",)]["_fo_source_url"].endswith("page=2")


def test_new_columns_are_added_and_missing_ones_kept(sink: Sink, tmp_path: Path) -> None:
    sink.upsert(land(tmp_path, VENDORS, [(vendors([("usmf", "V0", "4"), ("usmf", "V1", "5")]), at(1))]), VENDORS)
    # The tenant gained a field and the catalog narrowed $select: CreditLimit is not in this batch.
    page = pa.table({
        "dataAreaId": ["usmf", "usmf"], "VendorAccountNumber": ["V1", "V2"], "PaymentTerms": ["Net30", "Net10"],
    })
    result = sink.upsert(land(tmp_path, VENDORS, [(page, at(2))]), VENDORS)

    assert (result.inserted, result.updated) == (1, 1)
    names = [name for name, _ in result.columns]
    assert names.index("CreditLimit") < names.index("PaymentTerms")  # appended, the old one kept
    assert dict(result.columns)["PaymentTerms"] == "string"
    rows = current(sink.read(VENDORS), "VendorAccountNumber")
    assert rows[("V1",)]["PaymentTerms"] == "Net30"
    assert rows[("V1",)]["CreditLimit"] == decimal.Decimal("5")  # kept on the updated row
    assert rows[("V2",)]["CreditLimit"] is None  # null on the new row
    assert rows[("V0",)]["PaymentTerms"] is None  # null on rows the batch did not touch


def test_snapshot_flags_vanished_keys_of_its_company_only_and_a_comeback_undeletes(sink: Sink, tmp_path: Path) -> None:
    both = vendors([("usmf", "V1", "1"), ("usmf", "V2", "2"), ("demf", "V2", "3")])
    sink.upsert(land(tmp_path, VENDORS, [(both, at(1))]), VENDORS)
    snapshot = land(tmp_path, VENDORS, [(vendors([("usmf", "V1", "1")]), at(2, 6))], scopes=[USMF])

    result = sink.upsert(snapshot, VENDORS)

    assert result.deleted == 1
    rows = current(sink.read(VENDORS), "dataAreaId", "VendorAccountNumber")
    gone = rows[("usmf", "V2")]
    assert gone["_fo_deleted"] is True
    assert gone["_fo_batch_id"] == snapshot.batch_id
    assert gone["_fo_extracted_at"] == at(2, 6)  # when the snapshot began reading
    assert gone["CreditLimit"] == decimal.Decimal("2")  # the last known values stay
    assert rows[("demf", "V2")]["_fo_deleted"] is False  # another company's scope
    assert sink.upsert(snapshot, VENDORS).deleted == 0  # already flagged: not counted again

    back = sink.upsert(land(tmp_path, VENDORS, [(vendors([("usmf", "V2", "7")]), at(3))]), VENDORS)
    assert back.updated == 1
    revived = current(sink.read(VENDORS), "dataAreaId", "VendorAccountNumber")[("usmf", "V2")]
    assert (revived["_fo_deleted"], revived["CreditLimit"]) == (False, decimal.Decimal("7"))


def test_rows_extracted_after_the_snapshot_began_are_not_flagged(sink: Sink, tmp_path: Path) -> None:
    # A keyed pull landed V9 at 10:00 while a snapshot that began at 08:00 had already read past it.
    sink.upsert(land(tmp_path, VENDORS, [(vendors([("usmf", "V9", "9")]), at(2, 10))], mode="keys"), VENDORS)
    snapshot = land(tmp_path, VENDORS, [(vendors([("usmf", "V1", "1")]), at(2, 8))], scopes=[USMF])

    assert sink.upsert(snapshot, VENDORS).deleted == 0
    assert current(sink.read(VENDORS), "VendorAccountNumber")[("V9",)]["_fo_deleted"] is False


def test_window_scope_flags_only_inside_its_window(sink: Sink, tmp_path: Path) -> None:
    spec = STANDARD.spec_for("VendorInvoiceHeaders")

    def headers(rows: list[tuple[str, str, dt.date]]) -> pa.Table:
        return pa.table({
            "dataAreaId": [r[0] for r in rows], "HeaderReference": [r[1] for r in rows],
            "InvoiceDate": pa.array([r[2] for r in rows], pa.date32()),
        })

    sink.upsert(land(tmp_path, spec, [(headers([
        ("usmf", "H-before", dt.date(2026, 5, 31)), ("usmf", "H-in", dt.date(2026, 6, 1)),
        ("usmf", "H-last", dt.date(2026, 6, 7)), ("usmf", "H-after", dt.date(2026, 6, 8)),
        ("demf", "H-in", dt.date(2026, 6, 2)),
    ]), at(9))]), spec)
    window = DeleteScope("window", "usmf", "InvoiceDate", "2026-06-01", "2026-06-08")
    reread = land(tmp_path, spec, [(headers([("usmf", "H-last", dt.date(2026, 6, 7))]), at(10))], scopes=[window])

    result = sink.upsert(reread, spec)

    assert result.deleted == 1
    deleted = {k for k, row in current(sink.read(spec), "dataAreaId", "HeaderReference").items() if row["_fo_deleted"]}
    assert deleted == {("usmf", "H-in")}


def test_parents_scope_flags_missing_lines_of_the_headers_read_whole(sink: Sink, tmp_path: Path) -> None:
    spec = STANDARD.spec_for("VendorInvoiceLines")

    def lines(rows: list[tuple[str, str, str]]) -> pa.Table:
        return pa.table({
            "dataAreaId": [r[0] for r in rows], "HeaderReference": [r[1] for r in rows],
            "InvoiceLineNumber": pa.array([decimal.Decimal(r[2]) for r in rows], pa.decimal128(32, 16)),
        })

    sink.upsert(land(tmp_path, spec, [(lines([
        ("usmf", "H1", "1"), ("usmf", "H1", "2"), ("usmf", "H2", "1"), ("demf", "H1", "2"),
    ]), at(1))]), spec)
    parents = pa.table({"dataAreaId": ["usmf"], "HeaderReference": ["H1"]})
    scopes = [DeleteScope("parents")]
    batch = land(tmp_path, spec, [(lines([("usmf", "H1", "1")]), at(2))], scopes=scopes, parents=parents)

    result = sink.upsert(batch, spec)

    assert result.deleted == 1
    rows = current(sink.read(spec), "dataAreaId", "HeaderReference", "InvoiceLineNumber")
    assert {k for k, row in rows.items() if row["_fo_deleted"]} == {("usmf", "H1", decimal.Decimal("2"))}


def test_composite_keys_with_quotes_and_spaces_match_exactly(sink: Sink, tmp_path: Path) -> None:
    spec = STANDARD.spec_for("MainAccounts")  # shared: no company field, key (ChartOfAccounts, MainAccountId)

    def accounts(rows: list[tuple[str, str, str]]) -> pa.Table:
        return pa.table(dict(zip(("ChartOfAccounts", "MainAccountId", "Name"), map(list, zip(*rows)))))

    keys = [("General Chart", "O'Brien 1"), ("General Chart", " RFI-TEST-001"), ("General", "Chart O'Brien 1")]
    sink.upsert(land(tmp_path, spec, [(accounts([(*k, "v1") for k in keys]), at(1))], company=None), spec)
    page = accounts([("General Chart", "O'Brien 1", "v2"), ("General", "Chart O'Brien 1", "v1")])
    snapshot = land(tmp_path, spec, [(page, at(2))], scopes=[DeleteScope("company", None)], company=None)

    result = sink.upsert(snapshot, spec)

    # "General"/"Chart O'Brien 1" was re-read unchanged: not an update, and it keeps its first batch.
    assert (result.inserted, result.updated, result.deleted) == (0, 1, 1)
    rows = current(sink.read(spec), "ChartOfAccounts", "MainAccountId")
    assert set(rows) == set(keys)
    assert rows[("General Chart", "O'Brien 1")]["Name"] == "v2"
    assert rows[("General Chart", " RFI-TEST-001")]["_fo_deleted"] is True
    assert rows[("General", "Chart O'Brien 1")]["_fo_extracted_at"] == at(1)


def test_replaying_an_older_batch_never_overwrites_newer_rows(sink: Sink, tmp_path: Path) -> None:
    old = land(tmp_path, VENDORS, [(vendors([("usmf", "V1", "1"), ("usmf", "V2", "2")]), at(1))], scopes=[USMF])
    new = land(tmp_path, VENDORS, [(vendors([("usmf", "V1", "100")]), at(5))], scopes=[USMF])
    sink.upsert(old, VENDORS)
    sink.upsert(new, VENDORS)

    replay = sink.upsert(old, VENDORS)

    assert (replay.inserted, replay.updated, replay.deleted) == (0, 0, 0)
    rows = current(sink.read(VENDORS), "VendorAccountNumber")
    assert rows[("V1",)]["CreditLimit"] == decimal.Decimal("100")
    assert rows[("V2",)]["_fo_deleted"] is True  # the newer snapshot's delete stands


def test_a_keyed_pull_flags_nothing(sink: Sink, tmp_path: Path) -> None:
    sink.upsert(land(tmp_path, VENDORS, [(vendors([("usmf", "V1", "1"), ("usmf", "V2", "2")]), at(1))]), VENDORS)

    result = sink.upsert(land(tmp_path, VENDORS, [(vendors([("usmf", "V1", "3")]), at(2))], mode="keys"), VENDORS)

    assert (result.updated, result.deleted) == (1, 0)
    assert not any(row["_fo_deleted"] for row in sink.read(VENDORS).to_pylist())


def test_decimals_dates_and_instants_round_trip_exactly(sink: Sink, tmp_path: Path) -> None:
    spec = STANDARD.spec_for("GeneralJournalAccountEntryBiEntities")
    amounts = ["12345678901234567890123456.123456", "-0.000001", "0"]
    page = pa.table({
        "dataAreaId": ["usmf"] * 3,
        "SourceKey": pa.array([5637144576, 5637144577, 5637144578], pa.int64()),
        "AccountingCurrencyAmount": pa.array([decimal.Decimal(a) for a in amounts], pa.decimal128(32, 6)),
        "AccountingDate": pa.array([dt.date(1900, 1, 2), dt.date(2026, 2, 28), None], pa.date32()),
        "ModifiedDateTime": pa.array(
            [dt.datetime(2026, 6, 1, 23, 59, 59, 999999, tzinfo=dt.timezone.utc), None,
             dt.datetime(1999, 12, 31, 0, 0, 0, 1, tzinfo=dt.timezone.utc)], pa.timestamp("us", tz="UTC")),
        "IsCredit": [True, False, None],
        "Quantity": pa.array([1.5, -2.25, None], pa.float64()),
    })

    sink.upsert(land(tmp_path, spec, [(page, at(1))]), spec)

    back = sink.read(spec).sort_by("SourceKey")
    for name in page.column_names:
        assert back.schema.field(name).type == page.schema.field(name).type, name
        assert back.column(name).to_pylist() == page.column(name).to_pylist(), name


def test_key_profile_counts_live_rows_duplicates_and_null_keys(sink: Sink, tmp_path: Path) -> None:
    batch = land(tmp_path, VENDORS, [(vendors([("usmf", "V1", "1"), ("usmf", "V2", "2"), ("demf", "V1", "3")]),
                                       at(1))], scopes=[USMF])
    sink.upsert(batch, VENDORS)
    assert sink.profile(VENDORS) == KeyProfile(3, 0, 0)
    # A later snapshot of usmf without V2 flags it deleted: it no longer counts as live.
    sink.upsert(land(tmp_path, VENDORS, [(vendors([("usmf", "V1", "1")]), at(2))], scopes=[USMF]), VENDORS)
    assert sink.profile(VENDORS) == KeyProfile(2, 0, 0)


def test_landing_creates_the_home_and_its_folders_owner_only(tmp_path):
    """Staged batches are the tenant's data: every folder landing creates is the owner's alone, whatever the
    umask (FO_ASSETS_HOME is often created by the first run)."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        home = tmp_path / "home"
        batch = land(home, VENDORS, [(vendors([("usmf", "V1", "10")]), at(1))])
    finally:
        os.umask(old)
    created = [home, *(p for p in home.rglob("*") if p.is_dir())]
    assert batch.folder in created and len(created) >= 4
    assert {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in created} == {
        str(p.relative_to(tmp_path)): "0o700" for p in created}
