"""A lost pod: FO_ASSETS_HOME gone with the machine, the landing zone's durable copy in the volume.

With Databricks the staged batch folders stay in the Unity Catalog volume (``FO_LANDING_STORE=volume``,
the default): parts first, then the manifest, which the ledger keeps current. A new machine with an
empty home restores the manifests, fetches the parts back (checked against the manifest's sha256) and
replays, without touching F&O.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from fo_assets.cli import main as cli
from fo_assets.resources import build_ledger, build_sink
from fo_assets.settings import load_settings
from fo_assets_tests.reliability.children import kill_when, start_run
from fo_assets_tests.reliability.stack import FIRST, GL, GL_HEADERS, LAST, TABLES, Stack
from fo_assets_tests.reliability.test_databricks_faults import HEADERS_MERGE


HEADERS = "purchase_order_headers_v2"


def _volume(stack: Stack) -> Path:
    assert stack.dbx is not None
    return stack.dbx.engine.volume_dir("main", "fo", "staging")


def _archived_statuses(stack: Stack) -> dict[str, list[str]]:
    """What the volume's manifests say, read from the double's disk (not through fo-assets)."""
    found: dict[str, list[str]] = {}
    for path in sorted(_volume(stack).glob("*/*/manifest.json")):
        found.setdefault(path.parent.parent.name, []).append(json.loads(path.read_text())["status"])
    return found


def _lose_the_pod(stack: Stack) -> None:
    shutil.rmtree(stack.home)


def test_a_failed_load_survives_the_pod_and_replays_from_the_volume(
    stack: Stack, capsys: pytest.CaptureFixture
) -> None:
    stack.dbx.faults.fail_statements(HEADERS_MERGE, message="[INSUFFICIENT_PERMISSIONS] User lacks MODIFY on the table.")
    assert not stack.run().success
    # Staged and kept: the failed batch and those loaded before it (the snapshot in its own step; the GL pair
    # if it was read before the headers), each with a manifest saying what became of it. The batches the
    # run read after the failure never reached the volume.
    archived = _archived_statuses(stack)
    assert archived[HEADERS] == ["failed"] and archived["vendors_v2"] == ["loaded"]
    assert all(statuses == ["loaded"] for table, statuses in archived.items() if table != HEADERS)

    _lose_the_pod(stack)
    assert cli(["batches"]) == 0
    listing = capsys.readouterr()
    assert f"{len(archived)} batch manifest(s) restored from the landing archive" in listing.err
    assert sorted(line.split()[1:3] for line in listing.out.splitlines()) == sorted(
        [table, status] for table, (status,) in archived.items())

    assert cli(["replay", "--failed"]) == 0

    replayed = capsys.readouterr().out
    assert f"{HEADERS}: inserted" in replayed and "inserted 0" not in replayed
    stack.assert_exact(list(archived))
    assert _archived_statuses(stack) == {**archived, HEADERS: ["loaded"]}
    # What never reached the volume is re-read by a run, which converges.
    assert stack.run().success
    stack.assert_exact()


def test_a_pod_killed_in_the_merge_leaves_a_batch_a_new_pod_replays(stack: Stack, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    dbx = stack.dbx
    dbx.faults.delay_statements(rf"^MERGE WITH SCHEMA EVOLUTION INTO `main`.`fo`.`{GL}`", seconds=2)
    child = start_run(tmp_path / "child.log", TABLES, FIRST, LAST)

    def merging() -> bool:
        return any(r.text.startswith("MERGE") and GL in r.text for r in list(dbx.statements.records.values()))

    kill_when(child, merging)
    _lose_the_pod(stack)
    # Staged before the MERGE was sent: the manifest says landed and where its parts are.
    assert _archived_statuses(stack)[GL] == ["landed"]

    assert cli(["replay", "--failed"]) == 0

    assert f"{GL}: inserted" in capsys.readouterr().out
    assert _archived_statuses(stack)[GL] == ["loaded"]
    stack.assert_exact([GL])  # whatever the orphan MERGE did, once per key


def test_a_new_pod_takes_the_tenant_metadata_from_the_volume_not_from_fo(stack: Stack) -> None:
    sandbox = stack.sandbox
    assert stack.run(["vendors_v2"]).success
    # The EDMX carries every property's X++ type (AXType): the metadata service is never asked.
    assert sandbox.stats.count("/data/$metadata") == 1 and sandbox.stats.count("/Metadata/PublicEntities") == 0
    _lose_the_pod(stack)

    assert stack.run(["vendors_v2"]).success

    # Tens of MB of EDMX on a real tenant, and the AOS's time: fetched once, not once per run pod.
    assert sandbox.stats.count("/data/$metadata") == 1 and sandbox.stats.count("/Metadata/PublicEntities") == 0
    assert sorted(p.name for p in (_volume(stack) / "_fo_metadata").rglob("*.json")) == ["edmx.v2.json"]
    stack.assert_exact(["vendors_v2"])


def test_an_archived_part_that_changed_is_refused(stack: Stack, capsys: pytest.CaptureFixture) -> None:
    stack.dbx.faults.fail_statements(HEADERS_MERGE)
    assert not stack.run([HEADERS]).success
    _lose_the_pod(stack)
    (part,) = _volume(stack).glob(f"{HEADERS}/*/parts/*.parquet")
    part.write_bytes(part.read_bytes()[:-1] + b"\0")

    assert cli(["replay", "--failed"]) == 1

    err = capsys.readouterr().err
    assert f"/Volumes/main/fo/staging/{HEADERS}/" in err and "does not match its manifest" in err
    assert stack.rows(HEADERS) == []
    assert _archived_statuses(stack) == {HEADERS: ["failed"]}  # still replayable once the part is put right


def test_retention_prunes_the_volume_too(stack: Stack) -> None:
    stack.dbx.faults.fail_statements(HEADERS_MERGE)
    assert not stack.run(["vendors_v2", HEADERS]).success
    _lose_the_pod(stack)
    assert stack.run(["vendors_v2"]).success  # a second vendors batch, known here and in the volume
    # A dead upload's leftovers: parts without a manifest, which nothing will ever read.
    leftover = _volume(stack) / GL / "20260101T000000000000Z-dead0001"
    (leftover / "parts").mkdir(parents=True)
    (leftover / "parts" / "part-00000.parquet").write_bytes(b"PAR1")
    settings = load_settings()
    ledger = build_ledger(settings, build_sink(settings))

    assert ledger.purge(dt.timedelta(days=30)) == [leftover.name]  # the runs' batches are younger
    removed = ledger.purge(dt.timedelta(days=30), now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=31))

    # The vendors batch of this machine and the one only the volume knows; failed batches stay.
    assert len(removed) == 2 and _archived_statuses(stack) == {HEADERS: ["failed"]}
    assert list((_volume(stack) / "vendors_v2").iterdir()) == [] and not leftover.exists()
    assert ledger.batches(table="vendors_v2") == []


def test_the_commands_say_in_one_line_what_stops_them(stack: Stack, capsys: pytest.CaptureFixture) -> None:
    assert cli(["replay", "--batch", "20260101T000000000000Z-nope0000"]) == 2
    assert capsys.readouterr().err.strip() == "fo-assets: no landed batch '20260101T000000000000Z-nope0000' under " \
        f"{stack.home / 'landing'}"
    stack.configure(DATABRICKS_HOST="https://127.0.0.1:9")  # nothing listens on the discard port

    assert cli(["batches"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("fo-assets: cannot read the landing archive in /Volumes/main/fo/staging: cannot reach the "
                          "Databricks workspace https://127.0.0.1:9") and "Traceback" not in err
