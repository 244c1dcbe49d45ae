"""The runbook's commands are the real ones: its `checked` blocks run against the sandbox, in order, and
every fo-assets and Dagster command in the deployment docs is accepted by the real command line.

The checked blocks run as an operator runs them: one shell per block, in a session that keeps what a
block exports (the master key), with the customer's settings loaded as "Working on one customer" says,
and the operator's paste at the prompt (the sandbox's client secret) on standard input. Only the dates
change: the runbook's example days become two days the small sandbox tenant has data for.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from fo_assets.catalog import STANDARD
from fo_assets.landing import LandedBatch, Ledger
from fo_assets.sandbox import Sandbox, SandboxConfig
from fo_assets.secrets import Secret, SecretStore
from fo_assets_tests.support.tenant import ANCHOR
from fo_assets_tests.deploy.customers import REPO, clean_env, copy_customer
from fo_assets_tests.deploy.runbook import commands, parse, shell_blocks

RUNBOOK = REPO / "docs" / "operations.md"
DOCS = (RUNBOOK, REPO / "docs" / "deployment.md")
FIRST, LAST = ANCHOR - dt.timedelta(days=1), ANCHOR
VENDORS = STANDARD.spec_for("VendorsV2")


def test_every_documented_command_is_accepted_by_the_real_command_line():
    checked = 0
    for doc in DOCS:
        for block in shell_blocks(doc):
            checked += block.checked
            for argv in commands(block):
                parse(argv)
    assert checked >= 8  # the marks must not get lost in an edit


def _on_sandbox_days(script: str) -> str:
    script = re.sub(r"--partition-range \S+", f"--partition-range {FIRST}...{LAST}", script)
    script = re.sub(r'("dagster/asset_partition_range_start": )"[\d-]+"', rf'\1"{FIRST}"', script)
    script = re.sub(r'("dagster/asset_partition_range_end": )"[\d-]+"', rf'\1"{LAST}"', script)
    return re.sub(r"--partition (?!-)\S+", f"--partition {LAST}", script)


def _fail_a_load(home: Path) -> LandedBatch:
    """What a failed load leaves: the batch marked failed, its rows not in the table (here: none at all)."""
    ledger = Ledger(home)
    [batch] = ledger.batches(table=VENDORS.table)
    ledger.mark_failed(batch, "the warehouse was unavailable (made up by the test)")
    shutil.rmtree(home / "delta" / VENDORS.table)
    return batch


def _run_block(script: str, env: dict[str, str], paste: str, dump: Path) -> tuple[str, dict[str, str]]:
    """Run one block in bash; return its output and the session's environment after it."""
    result = subprocess.run(["bash", "-c", f"set -euo pipefail\n{script}\nenv -0 > '{dump}'\n"], env=env,
                            input=paste + "\n", capture_output=True, text=True, cwd=REPO, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"exit {result.returncode} running\n{script}\n{output}"
    pairs = (item.split("=", 1) for item in dump.read_text().split("\0") if "=" in item)
    return output, dict(pairs)


@pytest.mark.slow
def test_the_runbook_checked_commands_work_against_the_sandbox(tmp_path, monkeypatch):
    with Sandbox(SandboxConfig(scale=0.05, days=5, anchor_date=ANCHOR, companies=("usmf", "demf"))) as sandbox:
        customer = copy_customer(tmp_path, "contoso", sandbox)
        dagster_home = tmp_path / "dagster_home"
        dagster_home.mkdir()
        shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
        env = clean_env(DAGSTER_HOME=str(dagster_home), **customer.config())
        outputs = []
        for block in (b for b in shell_blocks(RUNBOOK) if b.checked):
            replay = "fo-assets replay" in block.body
            if replay:
                lost = _fail_a_load(customer.home)
                requests_before = sandbox.stats.count()
            output, env = _run_block(_on_sandbox_days(block.body), env, sandbox.cfg.client_secret,
                                     tmp_path / "session.env")
            outputs.append(output)
            if replay:
                assert f"{lost.batch_id} {lost.manifest.table}: inserted {lost.manifest.row_count}" in output
                assert sandbox.stats.count() == requests_before  # replayed from the landing zone, not F&O

    log = "\n".join(outputs)
    store = SecretStore(customer.home / "secrets.enc", Secret(env["FO_ASSETS_MASTER_KEY"]))
    assert store.get("FO_CLIENT_SECRET") == Secret(sandbox.cfg.client_secret)
    assert {"FO_CLIENT_SECRET", "DATABRICKS_CLIENT_SECRET"} <= set(log.split())
    assert sandbox.cfg.client_secret not in log

    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    with dg.DagsterInstance.get() as instance:
        assert instance.event_log_storage.get_concurrency_info(customer.pool).slot_count == 1
        for spec in STANDARD:
            key = dg.AssetKey(["contoso", *spec.asset_key_path])
            if STANDARD.mode_of(spec) == "snapshot":  # read whole, not partitioned
                assert instance.get_latest_materialization_event(key) is not None, spec.table
            else:
                assert instance.get_materialized_partitions(key) >= {FIRST.isoformat(), LAST.isoformat()}, spec.table
    batches = Ledger(customer.home).batches()
    assert {b.manifest.table for b in batches} == {spec.table for spec in STANDARD}
    assert {b.manifest.status for b in batches} == {"loaded"}
