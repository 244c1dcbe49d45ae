"""A run process killed with SIGKILL (from this process) during extraction, upload or merge.

Nothing the dead run did may stand in the way: the ledger says how far each batch got, a partial read
is never loaded, and a rerun or ``fo-assets replay --failed`` converges to exactly the source.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from fo_assets.cli import main as cli
from fo_assets.sandbox import Sandbox
from fo_assets_tests.support.tenant import ANCHOR
from fo_assets_tests.reliability.children import kill_when, start_run
from fo_assets_tests.reliability.stack import FIRST, GL, LAST, TABLES, Stack


def _ledger_listing(capsys: pytest.CaptureFixture) -> str:
    assert cli(["batches"]) == 0
    return capsys.readouterr().out


def test_killed_during_extraction_nothing_partial_loads_and_a_rerun_converges(
    local_stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    sb = local_stack.sandbox
    sb.faults.latency(0.15)  # a slow tenant keeps the child reading long enough to be caught at it
    child = start_run(tmp_path / "child.log", TABLES, FIRST, LAST)

    kill_when(child, lambda: sb.stats.count("/data/GeneralJournalAccountEntryBiEntities", 200) >= 2)

    # Killed while the GL lines were read: entities read before them may have landed and loaded already
    # (each is loaded as soon as it is read); what was still being read is never loaded.
    killed = local_stack.statuses()
    assert killed[GL] == ["extracting"]
    assert {status for statuses in killed.values() for status in statuses} <= {"extracting", "landed", "loaded"}
    partial = {table for table, statuses in killed.items() if statuses == ["extracting"]}
    assert not [table for table in partial if (local_stack.home / "delta" / table).exists()]
    listing = _ledger_listing(capsys)
    assert all(line.split()[2] == "extracting" for line in listing.splitlines() if line.split()[1] in partial)
    assert cli(["replay", "--failed"]) == 0  # loads what landed and was not loaded, never a partial read
    capsys.readouterr()
    assert {table for table, statuses in local_stack.statuses().items() if statuses == ["extracting"]} == partial
    assert not [table for table in partial if (local_stack.home / "delta" / table).exists()]

    sb.faults.latency(0)
    assert local_stack.run().success

    local_stack.assert_exact()
    # The dead run's partial reads stay as it left them (never loaded); everything else is loaded.
    assert local_stack.statuses() == {t: (["extracting"] if t in partial else ["loaded"] if t in killed else [])
                                      + ["loaded"] for t in TABLES}


def test_killed_during_upload_replay_converges(stack: Stack, tmp_path: Path) -> None:
    dbx = stack.dbx
    # The purchase order lines batch stages its part, then its parents scope file: held there by a long
    # Retry-After (the GL pair before it loads).
    dbx.faults.throttle(times=1, retry_after=60, path_pattern=r"/purchase_order_lines_v2/.*/scope/parents\.parquet$")
    child = start_run(tmp_path / "child.log", TABLES, FIRST, LAST)

    kill_when(child, lambda: any(status == 429 for _, _, status in list(dbx.requests)))

    statuses = stack.statuses()
    assert statuses["purchase_order_headers_v2"] == ["loaded"] and statuses["purchase_order_lines_v2"] == ["landed"]
    (lines,) = (dbx.engine.volume_dir("main", "fo", "staging") / "purchase_order_lines_v2").iterdir()
    # The dead run's part, uploaded and left behind; no manifest yet, so no other machine mistakes it for a batch.
    assert sorted(p.relative_to(lines).as_posix() for p in lines.rglob("*") if p.is_file()) == [
        "parts/part-00000.parquet"]
    assert stack.rows("purchase_order_lines_v2") == []

    assert cli(["replay", "--failed"]) == 0

    # The run died in its by-day step: its snapshot step (vendors) never started.
    read = [table for table in TABLES if table != "vendors_v2"]
    assert stack.statuses() == {table: ["loaded"] for table in read}
    stack.assert_exact(read)


def test_killed_during_the_merge_the_orphan_statement_and_a_rerun_converge(stack: Stack, tmp_path: Path) -> None:
    dbx = stack.dbx
    merge = r"^MERGE WITH SCHEMA EVOLUTION INTO `main`.`fo`.`general_journal_account_entry_bi_entities`"
    dbx.faults.delay_statements(merge, seconds=2)
    child = start_run(tmp_path / "child.log", TABLES, FIRST, LAST)

    def merging() -> bool:
        return any(r.text.startswith("MERGE") and GL in r.text for r in list(dbx.statements.records.values()))

    kill_when(child, merging)

    assert stack.statuses()[GL] == ["landed"]
    # The warehouse does not know its client died: the submitted MERGE still runs to the end.
    orphan = next(r for r in dbx.statements.records.values() if r.text.startswith("MERGE") and GL in r.text)
    assert orphan.done.wait(30) and orphan.state == "SUCCEEDED"

    rerun = stack.run()

    assert rerun.success
    gl = [e.step_materialization_data.materialization.metadata for e in rerun.get_asset_materialization_events()
          if e.step_materialization_data.materialization.asset_key.path == ["fo", GL]][0]
    assert gl["fo/inserted"].value == 0  # the orphan inserted them; the rerun matched, never duplicated
    stack.assert_exact()
    assert cli(["replay", "--failed"]) == 0  # the dead run's batch, older than the rerun's: no change
    stack.assert_exact()


def test_killed_during_a_local_delta_load_replay_converges(
    ledger_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = Stack(ledger_sandbox, tmp_path / "home", monkeypatch)
    month = (ANCHOR - dt.timedelta(days=29), LAST)
    assert stack.run([GL], month[0], month[0] + dt.timedelta(days=9)).success  # the table exists: a real merge
    child = start_run(tmp_path / "child.log", [GL], *month)

    # The child's month of ledger (about 10,000 rows) is sealed: its load into the table starts now.
    kill_when(child, lambda: "landed" in stack.statuses().get(GL, []))

    assert sorted(stack.statuses()[GL]) == ["landed", "loaded"]  # killed before its load was recorded
    keys = [tuple(r[k] for k in stack.key_columns(GL)) for r in stack.rows(GL)]
    assert len(keys) == len(set(keys))  # whatever the dead load had done is all or nothing

    assert cli(["replay", "--failed"]) == 0

    stack.assert_exact([GL], *month)
