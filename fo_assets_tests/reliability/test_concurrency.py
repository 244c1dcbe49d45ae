"""Two runs of overlapping partitions at once against one local Delta home (the pool limit lifted).

delta-rs commits optimistically: when two merges race on one table, the second commit is refused
("a concurrent transaction added new data") rather than applied on a stale snapshot, so a key is never
inserted twice. The losing run fails naming the table and the batch; its batches stay replayable, and
``fo-assets replay --failed`` converges. Which run loses, and on which table, is up to the scheduler,
so the free race accepts either run failing (or neither) and proves the invariants that must hold
always; a second test forces the losing interleaving: another run commits between the moment a run's
merge took its snapshot of the table and the moment it commits.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from fo_assets.catalog import STANDARD
from fo_assets.cli import main as cli
from fo_assets.dynamics.extract import ExtractRequest, Extractor
from fo_assets.io_manager import upsert_batch
from fo_assets.sandbox import Sandbox
from fo_assets.settings import load_settings
from fo_assets.sinks.local_delta import LocalDeltaSink
from fo_assets_tests.reliability.child_run import failure_message
from fo_assets_tests.reliability.children import start_run
from fo_assets_tests.reliability.stack import GL, LAST, TABLES, Stack


WINDOWS = ((LAST - dt.timedelta(days=6), LAST - dt.timedelta(days=1)), (LAST - dt.timedelta(days=3), LAST))


def test_overlapping_runs_at_once_never_duplicate_and_replay_converges(local_stack: Stack, tmp_path: Path) -> None:
    children = [start_run(tmp_path / f"run-{i}.log", TABLES, first, last) for i, (first, last) in enumerate(WINDOWS)]
    for child in children:
        child.process.wait(120)

    verdicts = [child.result_line() for child in children]
    for verdict in verdicts:
        if "FAILURE" in verdict:  # a lost commit race, reported as such, never anything else
            assert "Commit failed: a concurrent transaction" in verdict and "loading batch" in verdict, verdict
    for table in TABLES:  # before any repair: no key twice, whatever the interleaving was
        keys = [tuple(r[k] for k in local_stack.key_columns(table)) for r in local_stack.rows(table)]
        assert len(keys) == len(set(keys)), table

    assert cli(["replay", "--failed"]) == 0

    assert {b.manifest.status for b in local_stack.ledger.batches()} == {"loaded"}
    local_stack.assert_exact(first=WINDOWS[0][0], last=WINDOWS[1][1])


def test_a_merge_that_lost_the_commit_race_never_duplicates_and_replay_converges(
    ledger_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = Stack(ledger_sandbox, tmp_path / "home", monkeypatch)
    gl = STANDARD.spec_for("GeneralJournalAccountEntryBiEntities")
    month = (LAST - dt.timedelta(days=29), LAST)
    assert stack.run([GL], month[0], month[0] + dt.timedelta(days=4)).success
    with Extractor(load_settings(), "the-other-run") as extractor:  # another run's read, landed, not yet loaded
        window = (LAST - dt.timedelta(days=9), LAST + dt.timedelta(days=1))
        (other,) = extractor.extract([ExtractRequest(gl, window=window)])
    merge = DeltaTable.merge

    def interleaved(table: DeltaTable, *args: Any, **kwargs: Any) -> Any:
        # The run's merge has its snapshot of the table; the other run's load commits before it does.
        monkeypatch.setattr(DeltaTable, "merge", merge)
        upsert_batch(LocalDeltaSink(stack.home / "delta"), stack.ledger, other, gl)
        return merge(table, *args, **kwargs)

    monkeypatch.setattr(DeltaTable, "merge", interleaved)

    result = stack.run([GL], *month)

    assert DeltaTable.merge is merge  # the interleaving happened
    keys = [tuple(r[k] for k in gl.key_columns) for r in stack.rows(GL)]
    assert len(keys) == len(set(keys))  # whatever the outcome, no key twice
    if not result.success:  # delta-rs refused the stale commit; the sink reported it
        message = failure_message(result)
        assert "Commit failed: a concurrent transaction" in message, message
        assert f"local Delta table {stack.home / 'delta' / GL}" in message
        assert "failed" in {b.manifest.status for b in stack.ledger.batches()}

    assert cli(["replay", "--failed"]) == 0

    assert {b.manifest.status for b in stack.ledger.batches()} == {"loaded"}
    stack.assert_exact([GL], *month)
