"""What only the local Delta sink has: its read path and its maintenance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from fo_assets.catalog import STANDARD
from fo_assets.sinks import delta_files, local_delta
from fo_assets.sinks.local_delta import LocalDeltaSink
from fo_assets_tests.sinks.batches import at, current, land, vendors

VENDORS = STANDARD.spec_for("VendorsV2")
_READ = """
import sys
from pathlib import Path
from fo_assets.catalog import STANDARD
from fo_assets.sinks.local_delta import LocalDeltaSink
table = LocalDeltaSink(Path(sys.argv[1])).read(STANDARD.spec_for("VendorsV2"))
print(table.num_rows, sorted(table.column("VendorAccountNumber").to_pylist()))
"""


def test_reading_a_table_never_aborts_the_process_at_exit(tmp_path: Path) -> None:
    # deltalake 1.6's to_pyarrow_table() aborts about half of all processes at interpreter exit (exit
    # code 134); 20 clean exits in a row would happen by chance about once in a million if ours did too.
    sink = LocalDeltaSink(tmp_path / "delta")
    sink.upsert(land(tmp_path, VENDORS, [(vendors([("usmf", "V1", "1"), ("usmf", "V2", "2")]), at(1))]), VENDORS)
    sink.upsert(land(tmp_path, VENDORS, [(vendors([("usmf", "V3", "3")]), at(2))]), VENDORS)

    command = [sys.executable, "-c", _READ, str(tmp_path / "delta")]
    outcomes = []
    for _ in range(5):  # four at a time
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        for run in runs:
            out, err = run.communicate(timeout=60)
            outcomes.append((run.returncode, out.strip(), err))

    failed = next((err for code, _, err in outcomes if code), "")
    assert [(code, out) for code, out, _ in outcomes] == [(0, "3 ['V1', 'V2', 'V3']")] * 20, failed


_CREATE = """
import sys, time
from pathlib import Path
import pyarrow as pa
from fo_assets.sinks import delta_files
path, start, writer = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
rows = pa.table({"k": pa.array([1, 2, 3], pa.int64()), "writer": pa.array([writer] * 3)})
files = delta_files.write_files(pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches()), path)
time.sleep(max(0.0, start - time.time()))  # every process commits at the same moment
print(delta_files.create_table(path, rows.schema, files, {}))
"""


def test_creators_racing_for_a_new_table_commit_exactly_one_copy(tmp_path: Path) -> None:
    # delta-rs retries a CREATE TABLE that lost the race for version 0 as version 1: without the claim on
    # the log folder, several copies of the rows ended up in the table.
    for attempt in range(3):
        path = tmp_path / f"t{attempt}"
        path.mkdir()
        start = time.time() + 2.0
        runs = [subprocess.Popen([sys.executable, "-c", _CREATE, str(path), str(start), f"w{i}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(8)]
        results = [run.communicate(timeout=60) for run in runs]
        assert all(run.returncode == 0 for run in runs), [err for _, err in results]
        assert sorted(out.strip() for out, _ in results) == ["False"] * 7 + ["True"]
        table = DeltaTable(str(path))
        assert table.version() == 0
        rows = pa.concat_tables(pq.read_table(uri) for uri in table.file_uris())
        assert sorted(rows.column("k").to_pylist()) == [1, 2, 3] and len(set(rows.column("writer").to_pylist())) == 1
        assert len(list(path.glob("*.parquet"))) == 1  # the losers removed their files


def test_maintenance_compacts_and_keeps_every_row(tmp_path: Path) -> None:
    sink = LocalDeltaSink(tmp_path / "delta")
    for day in range(1, 5):
        sink.upsert(land(tmp_path, VENDORS, [(vendors([("usmf", f"V{day}", str(day))]), at(day))]), VENDORS)
    before = current(sink.read(VENDORS), "VendorAccountNumber")

    report = sink.maintain(VENDORS)

    assert report["files_removed"] == 4 and report["files_added"] == 1
    assert report["retain_hours"] == 720
    assert current(sink.read(VENDORS), "VendorAccountNumber") == before
    assert len(list((tmp_path / "delta" / "vendors_v2").glob("*.parquet"))) == 5  # history kept for 30 days


def test_a_first_load_commits_the_parts_and_an_unchanged_reload_commits_nothing(tmp_path: Path) -> None:
    sink = LocalDeltaSink(tmp_path / "delta")
    batch = land(tmp_path, VENDORS, [(vendors([("usmf", "V1", "1")]), at(1)), (vendors([("usmf", "V2", "2")]), at(2))])
    table = tmp_path / "delta" / "vendors_v2"

    assert (sink.upsert(batch, VENDORS).inserted, DeltaTable(str(table)).version()) == (2, 0)
    assert len(DeltaTable(str(table)).file_uris()) == len(batch.part_paths)  # the parts, copied as they are

    again = sink.upsert(batch, VENDORS)

    assert (again.inserted, again.updated, DeltaTable(str(table)).version()) == (0, 0, 0)
    newer = sink.upsert(land(tmp_path, VENDORS, [(vendors([("usmf", "V2", "3")]), at(3))]), VENDORS)
    assert (newer.updated, DeltaTable(str(table)).version()) == (1, 1)
    assert [p.name for p in (tmp_path / "delta").iterdir()] == ["vendors_v2"]  # no scratch left behind


def test_a_table_another_writer_created_meanwhile_is_merged_into(tmp_path: Path, monkeypatch) -> None:
    sink = LocalDeltaSink(tmp_path / "delta")
    ours = land(tmp_path, VENDORS, [(vendors([("usmf", "V1", "5"), ("usmf", "V2", "2")]), at(2))])
    theirs = land(tmp_path, VENDORS, [(vendors([("usmf", "V1", "1"), ("usmf", "V3", "3")]), at(1))])
    create = delta_files.create_table

    def raced(*args, **kwargs):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(delta_files, "create_table", create)
        sink.upsert(theirs, VENDORS)  # the other writer commits version 0 first
        return create(*args, **kwargs)

    monkeypatch.setattr(delta_files, "create_table", raced)

    result = sink.upsert(ours, VENDORS)

    assert (result.inserted, result.updated) == (1, 1)
    rows = current(sink.read(VENDORS), "VendorAccountNumber")
    assert {k: r["CreditLimit"] for k, r in rows.items()} == {("V1",): 5, ("V2",): 2, ("V3",): 3}
    folder = tmp_path / "delta" / "vendors_v2"
    committed = {json.loads(line)["add"]["path"] for log in (folder / "_delta_log").glob("*.json")
                 for line in log.read_text().splitlines() if '"add"' in line}
    assert {p.name for p in folder.glob("*.parquet")} == committed  # our uncommitted copies were removed


@pytest.mark.parametrize("in_memory_bytes", [0, 64 * 1024 * 1024], ids=["streamed", "in memory"])
def test_changed_rows_merge_the_same_streamed_or_in_memory(tmp_path: Path, monkeypatch, in_memory_bytes) -> None:
    monkeypatch.setattr(local_delta, "_IN_MEMORY_BYTES", in_memory_bytes)
    sink = LocalDeltaSink(tmp_path / "delta")
    sink.upsert(land(tmp_path, VENDORS, [(vendors([("usmf", f"V{i}", str(i)) for i in range(6)]), at(1))]), VENDORS)
    # Duplicates inside the batch: V1 twice (the later page wins), plus one unchanged, one new row.
    pages = [(vendors([("usmf", "V1", "10"), ("usmf", "V2", "2"), ("usmf", "V9", "9")]), at(2)),
             (vendors([("usmf", "V1", "11")]), at(3))]

    result = sink.upsert(land(tmp_path, VENDORS, pages), VENDORS)

    assert (result.inserted, result.updated) == (1, 1)
    rows = current(sink.read(VENDORS), "VendorAccountNumber")
    assert len(rows) == 7 and rows[("V1",)]["CreditLimit"] == 11 and rows[("V2",)]["_fo_extracted_at"] == at(1)


def test_keys_with_a_null_part_match_null_safe(tmp_path: Path) -> None:
    spec = STANDARD.spec_for("MainAccounts")

    def accounts(name: str) -> pa.Table:
        return pa.table({"ChartOfAccounts": pa.array([None, "Main"], pa.string()), "MainAccountId": ["1", "1"],
                         "Name": [name, name]})

    sink = LocalDeltaSink(tmp_path / "delta")
    sink.upsert(land(tmp_path, spec, [(accounts("old"), at(1))], company=None), spec)

    result = sink.upsert(land(tmp_path, spec, [(accounts("new"), at(2))], company=None), spec)

    assert (result.inserted, result.updated) == (0, 2)
    rows = current(sink.read(spec), "ChartOfAccounts", "MainAccountId")
    assert {k: r["Name"] for k, r in rows.items()} == {(None, "1"): "new", ("Main", "1"): "new"}


def test_maintenance_removes_scratch_folders_killed_loads_left_behind(tmp_path: Path) -> None:
    sink = LocalDeltaSink(tmp_path / "delta")
    spec = STANDARD.spec_for("VendorsV2")
    sink.upsert(land(tmp_path, spec, [(vendors([("usmf", "V1", "1")]), at(1))]), spec)
    stale, fresh = tmp_path / "delta" / ".load-killed", tmp_path / "delta" / ".load-running"
    for folder in (stale, fresh):
        (folder / "spill").mkdir(parents=True)
    day_ago = time.time() - 25 * 3600
    os.utime(stale, (day_ago, day_ago))

    assert sink.maintain(spec)["stale_scratch_removed"] == 1
    assert not stale.exists() and fresh.exists()


def test_a_reload_of_wide_rows_compares_them_within_duckdbs_memory(tmp_path: Path, monkeypatch) -> None:
    # The comparison holds only the table's keys, extraction time and a row hash, not its columns: joined
    # whole, a re-load of 1,000,000 real GL lines ran out of DuckDB's 128 MB. Here 80 MB of text, 64 MB.
    monkeypatch.setattr(delta_files, "_DUCKDB_MEMORY", "64MB")
    rows = 40_000
    base = vendors([("usmf", f"V{i:06}", str(i)) for i in range(rows)])
    for n in range(8):
        base = base.append_column(f"Note{n}", pa.array([f"{n}{i:06}".ljust(250, "x") for i in range(rows)]))
    sink = LocalDeltaSink(tmp_path / "delta")
    sink.upsert(land(tmp_path, VENDORS, [(base, at(1))]), VENDORS)
    changed = base.set_column(base.schema.get_field_index("Note3"), "Note3",
                              pa.array(["changed" if i == 7 else f"3{i:06}".ljust(250, "x") for i in range(rows)]))

    result = sink.upsert(land(tmp_path, VENDORS, [(changed, at(2))]), VENDORS)

    assert (result.inserted, result.updated) == (0, 1)
    landed = current(sink.read(VENDORS), "VendorAccountNumber")
    assert landed[("V000007",)]["Note3"] == "changed" and landed[("V000008",)]["_fo_extracted_at"] == at(1)
