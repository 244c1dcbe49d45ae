"""The end-to-end stack of the reliability tests: F&O sandbox -> Dagster run -> Databricks double or local Delta.

``Stack`` configures fo-assets the way an operator does (environment variables only), runs the entity
job in process, scans what a run left (files, the Dagster event log) for secrets, and answers the one
question every fault must end with: is the target exactly the source, once per key?

The expected rows come from the sandbox's ground truth, typed from its own X++ field definitions
(``truth``), never from what fo-assets landed.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import quote

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from fo_assets.catalog import STANDARD, EntitySpec
from fo_assets.definitions import ENTITY_JOB, build_definitions
from fo_assets.landing import Ledger
from fo_assets.partitions import range_tags
from fo_assets.sandbox import Sandbox
from fo_assets_tests.support.tenant import ANCHOR
from fo_assets_tests.support.truth import truth
from fo_assets_tests.databricks_double import DatabricksDouble
from fo_assets_tests.sinks.conftest import CATALOG, SCHEMA, VOLUME

FIRST, LAST = ANCHOR - dt.timedelta(days=2), ANCHOR
# A snapshot entity with dimensions, the GL voucher/line pair (a company found through the ledger, lines
# read by RecId ranges, inherited columns) and the purchase order header/line pair (a windowed entity with
# dimensions, lines read by key chunks): every read mode, at a size that keeps a run near a few seconds.
GL_HEADERS, GL = "general_journal_entry_bi_entities", "general_journal_account_entry_bi_entities"
TABLES = ("vendors_v2", GL_HEADERS, GL, "purchase_order_headers_v2", "purchase_order_lines_v2")
JOB_ID = 77


def databricks_env(dbx: DatabricksDouble) -> dict[str, str]:
    return {
        "DATABRICKS_HOST": dbx.host, "DATABRICKS_CLIENT_ID": dbx.client_id,
        "DATABRICKS_CLIENT_SECRET": dbx.client_secret, "DATABRICKS_WAREHOUSE_ID": dbx.warehouse_id,
        "DATABRICKS_CATALOG": CATALOG, "DATABRICKS_SCHEMA": SCHEMA, "DATABRICKS_VOLUME": VOLUME,
        "DATABRICKS_JOB_ID": str(JOB_ID), "REQUESTS_CA_BUNDLE": str(dbx.ca_bundle_path),
    }


def base_env(sandbox: Sandbox, home: Path) -> dict[str, str]:
    return {**sandbox.env(), "FO_ASSETS_HOME": str(home), "FO_PARTITIONS_START": "2026-05-01",
            "FO_REQUEST_TIMEOUT": "10", "FO_WARMUP_TIMEOUT": "30"}


# -- the oracle -------------------------------------------------------------------------------------


def _day(value: Any) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def read_by_run(spec: EntitySpec, row: dict, first: dt.date, last: dt.date) -> bool:
    """Whether a windowed run over ``first..last`` reads ``row``: dated in the window, changed in it, or
    a record not finished yet (re-read by every run whatever its date)."""
    def within(name: str | None) -> bool:
        return name is not None and row[name] is not None and first <= _day(row[name]) <= last

    still_open = spec.open_states is not None and row[spec.open_states.field] not in spec.open_states.finished
    return within(spec.window_field) or within(spec.changed_field) or still_open


def expected_rows(sandbox: Sandbox, spec: EntitySpec, first: dt.date, last: dt.date) -> dict[tuple, dict]:
    """The source rows a run over ``first..last`` must land, typed as landed, by key."""
    rows = truth(sandbox, spec.entity_set, excluded=spec.excluded_fields + spec.personal_fields)
    if spec.parent:  # lines are the lines of the headers the run reads, whatever their own dates
        link = spec.parent
        headers = {tuple(r[k] for k in link.header_fields)
                   for r in expected_rows(sandbox, STANDARD.spec_for(link.entity_set), first, last).values()}
        rows = [r for r in rows if tuple(r[k] for k in link.line_fields) in headers]
    elif spec.window_field:
        rows = [r for r in rows if read_by_run(spec, r, first, last)]
    indexed = {tuple(r[k] for k in spec.key_columns): r for r in rows}
    assert len(indexed) == len(rows), f"the sandbox itself has duplicate keys in {spec.entity_set}"
    return indexed


def assert_exact(sandbox: Sandbox, spec: EntitySpec, target: list[dict], first: dt.date = FIRST,
                 last: dt.date = LAST) -> None:
    """Live target rows equal the source field by field, every key appears once (deleted rows included)."""
    keys = Counter(tuple(r[k] for k in spec.key_columns) for r in target)
    duplicates = sorted(k for k, n in keys.items() if n > 1)
    assert not duplicates, f"{spec.table}: duplicate keys {duplicates[:5]}"
    want = expected_rows(sandbox, spec, first, last)
    live = {tuple(r[k] for k in spec.key_columns): r for r in target if not r["_fo_deleted"]}
    assert sorted(live) == sorted(want), f"{spec.table}: live keys differ from the source"
    for key, source in want.items():
        landed = {name: live[key].get(name) for name in source}
        assert landed == source, f"{spec.table} {key}: landed {landed} != source {source}"


def local_rows(delta_root: Path, spec: EntitySpec) -> list[dict]:
    """Every row of a local Delta table, read from its committed files only (what a reader sees)."""
    path = delta_root / spec.table
    if not DeltaTable.is_deltatable(str(path)):
        return []
    tables = [_plain_strings(pq.read_table(uri)) for uri in DeltaTable(str(path)).file_uris()]
    return pa.concat_tables(tables, promote_options="default").to_pylist() if tables else []


def _plain_strings(table: pa.Table) -> pa.Table:
    """Files written by different engines may hold the same text column as string or string_view."""
    schema = pa.schema([f.with_type(pa.string()) if f.type == pa.string_view() else f for f in table.schema])
    return table.cast(schema)


def databricks_rows(dbx: DatabricksDouble, spec: EntitySpec) -> list[dict]:
    """Every row of the double's table, read straight from its DuckDB warehouse."""
    if not dbx.engine.table_columns(CATALOG, SCHEMA, spec.table):
        return []
    with dbx.engine.lock:
        table = dbx.engine.con.sql(f"SELECT * FROM {dbx.table_ref(CATALOG, SCHEMA, spec.table)}").to_arrow_table()
    return table.to_pylist()


# -- secrets ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    user: str  # the client id that goes with the secret in an HTTP Basic header
    secret: str

    def spellings(self) -> set[str]:
        """The forms a leaked secret takes: as is, URL-encoded, base64, and inside a Basic header."""
        basic = base64.b64encode(f"{self.user}:{self.secret}".encode()).decode()
        return {self.secret, quote(self.secret, safe=""), base64.b64encode(self.secret.encode()).decode(), basic}


def leaks(credentials: Iterable[Credential], texts: Iterable[tuple[str, bytes]]) -> list[tuple[str, str]]:
    """(where, which form) of every secret found in ``texts`` (name, content)."""
    forms = {form for credential in credentials for form in credential.spellings()}
    return [(where, form) for where, content in texts for form in forms if form.encode() in content]


def files_under(*roots: Path) -> list[tuple[str, bytes]]:
    return [(str(p), p.read_bytes()) for root in roots if root.exists() for p in root.rglob("*") if p.is_file()]


# -- the stack --------------------------------------------------------------------------------------


@dataclass
class Stack:
    sandbox: Sandbox
    home: Path
    monkeypatch: pytest.MonkeyPatch
    dbx: DatabricksDouble | None = None
    instance: dg.DagsterInstance = field(init=False)

    def __post_init__(self) -> None:
        # In memory: a run is three times faster than with SQLite storage (one commit per event);
        # the event log is scanned through the instance's API instead of its files.
        self.instance = dg.DagsterInstance.ephemeral()
        self.configure()

    def configure(self, **extra: str) -> None:
        env = {**base_env(self.sandbox, self.home), **(databricks_env(self.dbx) if self.dbx else {}), **extra}
        for name, value in env.items():
            self.monkeypatch.setenv(name, value)

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.home)

    def statuses(self) -> dict[str, list[str]]:
        """The ledger's batch statuses per table, oldest batch first."""
        found: dict[str, list[str]] = {}
        for batch in self.ledger.batches():
            found.setdefault(batch.manifest.table, []).append(batch.manifest.status)
        return found

    def run(self, tables: Iterable[str] = TABLES, first: dt.date = FIRST,
            last: dt.date = LAST) -> dg.ExecuteInProcessResult:
        """One run of the entity job over ``first..last`` (a single-run range), failures returned, not raised."""
        job = build_definitions().resolve_job_def(ENTITY_JOB)
        return job.execute_in_process(instance=self.instance, tags=range_tags(first, last), raise_on_error=False,
                                      asset_selection=[dg.AssetKey(["fo", t]) for t in tables])

    def materialize_model(self) -> dg.ExecuteInProcessResult:
        defs = build_definitions()
        model = defs.get_assets_def(dg.AssetKey(["fo_model", "trial_balance"]))
        return dg.materialize([model], instance=self.instance, resources={"fo": defs.resources["fo"]},
                              raise_on_error=False)

    def key_columns(self, table: str) -> tuple[str, ...]:
        return STANDARD.by_table(table).key_columns

    def rows(self, table: str) -> list[dict]:
        spec = STANDARD.by_table(table)
        return databricks_rows(self.dbx, spec) if self.dbx else local_rows(self.home / "delta", spec)

    def assert_exact(self, tables: Iterable[str] = TABLES, first: dt.date = FIRST, last: dt.date = LAST) -> None:
        for table in tables:
            assert_exact(self.sandbox, STANDARD.by_table(table), self.rows(table), first, last)

    def credentials(self) -> list[Credential]:
        found = [Credential(self.sandbox.cfg.client_id, self.sandbox.cfg.client_secret)]
        return found + ([Credential(self.dbx.client_id, self.dbx.client_secret)] if self.dbx else [])

    def event_log(self) -> list[tuple[str, bytes]]:
        """Every event of every run, serialized as the instance stores it (messages, metadata, errors)."""
        logs = []
        for run in self.instance.get_runs():
            events = "\n".join(dg.serialize_value(event) for event in self.instance.all_logs(run.run_id))
            logs.append((f"event log of run {run.run_id}", events.encode()))
        return logs

    def assert_no_secret_leaked(self, *texts: tuple[str, bytes]) -> None:
        """Nothing under FO_ASSETS_HOME (manifests, parts, tables), in the double's warehouse and
        volumes, in the Dagster event log or in ``texts`` holds a client secret in any spelling."""
        roots = [self.home] + ([self.dbx.root] if self.dbx else [])
        scanned = files_under(*roots) + self.event_log() + list(texts)
        assert any(name.endswith("manifest.json") for name, _ in scanned), "nothing landed to scan"
        assert leaks(self.credentials(), scanned) == []


def retried_requests(stack: Stack, result: dg.ExecuteInProcessResult) -> int:
    """F&O requests the run sent again (after 429, 5xx, drops, 401), from the manifests of the batches it
    landed (each named by the materializations of every partition of the range)."""
    ran = {event.step_materialization_data.materialization.metadata["fo/batch_id"].value
           for event in result.get_asset_materialization_events()}
    return sum(b.manifest.stats.get("retries", 0) for b in stack.ledger.batches() if b.manifest.batch_id in ran)


def when(condition: Callable[[], bool], action: Callable[[], object], timeout_s: float = 60) -> threading.Thread:
    """Run ``action`` once ``condition`` holds (polled from a thread): a fault armed mid-run."""
    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                action()
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread
