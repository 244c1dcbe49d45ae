"""A replay is recorded in Dagster: the failed run's partitions show the entity loaded, with the load's metadata."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from fo_assets.cli import main as cli
from fo_assets_tests.reliability.stack import FIRST, LAST, Stack
from fo_assets_tests.reliability.test_databricks_faults import HEADERS_MERGE

HEADERS = "purchase_order_headers_v2"


def test_a_replay_materializes_the_partitions_of_the_failed_run(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    stack.instance = dg.DagsterInstance.get()  # on disk, so the command sees the run
    stack.dbx.faults.fail_statements(HEADERS_MERGE)
    failed = stack.run([HEADERS])
    assert not failed.success
    key = dg.AssetKey(["fo", HEADERS])
    assert stack.instance.get_materialized_partitions(key) == set()

    assert cli(["replay", "--failed"]) == 0

    assert f"recorded in Dagster on 3 partition(s) of run {failed.run_id}" in capsys.readouterr().out
    days = {FIRST.isoformat(), (FIRST + (LAST - FIRST) / 2).isoformat(), LAST.isoformat()}
    assert stack.instance.get_materialized_partitions(key) == days
    metadata = stack.instance.get_latest_materialization_event(key).asset_materialization.metadata
    live = [r for r in stack.rows(HEADERS) if not r["_fo_deleted"]]
    assert metadata["fo/replayed_from_run"].value == failed.run_id
    assert metadata["fo/inserted"].value == len(live) > 0
    assert metadata["dagster/table_name"].value == f"main.fo.{HEADERS}"


def test_without_dagster_home_the_replay_says_it_is_not_recorded(stack: Stack, capsys: pytest.CaptureFixture) -> None:
    stack.dbx.faults.fail_statements(HEADERS_MERGE)
    assert not stack.run([HEADERS]).success

    assert cli(["replay", "--failed"]) == 0

    captured = capsys.readouterr()
    assert "DAGSTER_HOME is not set: the replayed loads are not recorded in Dagster" in captured.err
    assert f"{HEADERS}: inserted" in captured.out and "recorded" not in captured.out
