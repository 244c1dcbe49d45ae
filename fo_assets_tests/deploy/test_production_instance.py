"""deploy/dagster.yaml on a real PostgreSQL server, with the daemon launching the runs.

One scenario, as production lives it: the pool limit is set with the documented command, a partition
range is submitted to the run queue and launched by the daemon, the Business Events sensor consumes the
inbox, then the daemon's pod is lost (the daemon stops and comes back with an empty DAGSTER_HOME) and
carries on from what PostgreSQL kept: the sensor resumes after its cursor, the schedules keep running.
"""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType
from dagster._core.scheduler.instigation import InstigatorType

from fo_assets.catalog import STANDARD
from fo_assets.definitions import ENTITY_JOB
from fo_assets.events.payload import dumps, intake
from fo_assets.events.inbox import open_inbox
from fo_assets.partitions import range_tags
from fo_assets.sandbox import Sandbox, SandboxConfig
from fo_assets.settings import load_settings
from fo_assets.sinks.local_delta import LocalDeltaSink
from fo_assets_tests.support.tenant import ANCHOR
from fo_assets_tests.deploy.customers import BIN, clean_env, dagster_home, run, set_up_customer, write_workspace
from fo_assets_tests.deploy.daemon import running_daemon, wait_for

pytestmark = pytest.mark.slow

REFRESH_JOB = "fo_targeted_refresh"
FIRST, LAST = ANCHOR - dt.timedelta(days=1), ANCHOR
DAYS = 2


def _events(sandbox: Sandbox, count: int) -> list:
    """Purchase-order-confirmed events for distinct orders, as the receiver stores them."""
    orders = sandbox.tenant.rows("PurchaseOrderHeadersV2", "usmf")[:count]
    payloads = [sandbox.events.purchase_order_confirmed("usmf", po["PurchaseOrderNumber"]) for po in orders]
    return list(intake(dumps(payloads)).events)


def _runs(instance: dg.DagsterInstance, job: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(job_name=job)))


def _finished(instance: dg.DagsterInstance, job: str, count: int) -> list[dg.DagsterRun] | None:
    runs = _runs(instance, job)
    done = [r for r in runs if r.is_finished]
    return done if len(done) >= count else None


def _why(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """The run's error events, for the failure message."""
    events = [e.dagster_event for e in instance.all_logs(run.run_id) if e.is_dagster_event]
    failures = [event for event in events if event.is_failure]
    details = [getattr(f.event_specific_data, "error", None) or f.message for f in failures]
    return f"run {run.run_id} is {run.status}: " + "\n".join(map(str, details))[-3000:]


def _state(instance: dg.DagsterInstance, kind: InstigatorType, name: str):
    return next((s for s in instance.all_instigator_state(instigator_type=kind) if s.name == name), None)


def test_daemon_on_postgres_launches_runs_and_a_lost_pod_loses_nothing(postgres, master_key, tmp_path, monkeypatch):
    with Sandbox(SandboxConfig(scale=0.05, days=5, anchor_date=ANCHOR, companies=("usmf", "demf"))) as sandbox:
        customer = set_up_customer(tmp_path, "contoso", sandbox, master_key)
        workspace = write_workspace(tmp_path, [customer])
        # As in deploy/customers: the inbox in PostgreSQL in the customer's schema, its password a secret
        # in the pods' environment (the customer's Kubernetes secret).
        inbox_env = postgres.inbox_env("fo_assets_contoso")
        password = {"FO_INBOX_PASSWORD": inbox_env.pop("FO_INBOX_PASSWORD")}
        with customer.env_file.open("a") as config:
            config.writelines(f"{name}={value}\n" for name, value in inbox_env.items())
        inbox = open_inbox(load_settings(env=password, config_file=customer.env_file))
        first_events = _events(sandbox, 2)
        inbox.append(first_events)  # received before the daemon starts: its first sensor tick reads them

        for name, value in postgres.env().items():
            monkeypatch.setenv(name, value)  # this process reads the instance too, to check it
        pod1 = dagster_home(tmp_path, "pod1")
        env = clean_env(DAGSTER_HOME=str(pod1), FO_ASSETS_MASTER_KEY=master_key, **password, **postgres.env())
        instance = dg.DagsterInstance.from_config(str(pod1))

        # The documented way to set a customer's pool limit: its configuration exported, then the command.
        out = run([str(BIN / "fo-assets"), "instance", "init", "--pool-limit", "1"], {**env, **customer.config()})
        assert customer.pool in out
        assert postgres.query('SELECT concurrency_key, "limit" FROM concurrency_limits') == [(customer.pool, 1)]

        log = tmp_path / "daemon.log"
        with running_daemon(workspace, env, log):
            run([str(BIN / "dagster"), "job", "launch", "-w", str(workspace), "-l", customer.name, "-j", ENTITY_JOB,
                 "--tags", json.dumps(range_tags(FIRST, LAST))], env)
            entity_run = wait_for("the entity run", lambda: _finished(instance, ENTITY_JOB, 1), 240, log)[0]
            refresh_run = wait_for("the sensor's refresh run", lambda: _finished(instance, REFRESH_JOB, 1), 180, log)[0]
            cursor_before = _state(instance, InstigatorType.SENSOR, "fo_business_events").instigator_data.cursor
            schedules_before = {n: _state(instance, InstigatorType.SCHEDULE, n) for n in
                                ("fo_daily_trailing_window", "fo_weekly_reconciliation")}

        assert entity_run.status == dg.DagsterRunStatus.SUCCESS, _why(instance, entity_run)
        assert refresh_run.status == dg.DagsterRunStatus.SUCCESS, _why(instance, refresh_run)
        _assert_stored_in_postgres(postgres, entity_run.run_id)
        vendors = STANDARD.spec_for("VendorsV2")
        rows = LocalDeltaSink(customer.home / "delta").read(vendors).num_rows
        assert rows == len(sandbox.tenant.rows(vendors.entity_set))
        assert int(refresh_run.tags["fo/events"]) == len(first_events)
        assert cursor_before == str(inbox.read_after(0, 100)[1])
        for name, state in schedules_before.items():
            assert state is not None and state.is_running, f"{name} is not running"

        # The pod is lost: a new daemon with an empty DAGSTER_HOME. The inbox is in PostgreSQL.
        later = _events(sandbox, 3)[2:]
        inbox.append(later)
        pod2 = dagster_home(tmp_path, "pod2")
        with running_daemon(workspace, {**env, "DAGSTER_HOME": str(pod2)}, log):
            runs = wait_for("a refresh run for the new event", lambda: _finished(instance, REFRESH_JOB, 2), 180, log)
            schedules_after = {n: _state(instance, InstigatorType.SCHEDULE, n) for n in schedules_before}

        [newest] = [r for r in runs if r.run_id != refresh_run.run_id]
        assert newest.run_config["ops"]["refresh_records"]["config"]["event_ids"] == [e.event_id for e in later]
        assert newest.status == dg.DagsterRunStatus.SUCCESS, _why(instance, newest)
        assert len(_runs(instance, REFRESH_JOB)) == 2  # the first events were not read again
        assert not (customer.home / "events").exists()  # the sensor read PostgreSQL, no SQLite inbox appeared
        for name, state in schedules_after.items():
            assert state.is_running, f"{name} stopped after the restart"
            assert state.instigator_data.start_timestamp == schedules_before[name].instigator_data.start_timestamp
        instance.dispose()


def _assert_stored_in_postgres(postgres, run_id: str) -> None:
    """What the UI shows about the run is in PostgreSQL, and the daemon's run queue launched it."""
    [(status,)] = postgres.query("SELECT status FROM runs WHERE run_id = %s", (run_id,))
    assert status == "SUCCESS"
    events = dict(postgres.query(
        "SELECT dagster_event_type, count(*) FROM event_logs WHERE run_id = %s GROUP BY dagster_event_type",
        (run_id,)))
    # Submitted to the queue; only the daemon's run coordinator moves a queued run on to starting.
    assert events.get(DagsterEventType.RUN_ENQUEUED.value) == 1
    assert events.get(DagsterEventType.RUN_STARTING.value) == 1
    # Each day of an entity read by day, once for an entity read whole (not partitioned).
    assert events.get(DagsterEventType.ASSET_MATERIALIZATION.value) == sum(
        1 if STANDARD.mode_of(spec) == "snapshot" else DAYS for spec in STANDARD)
    checks = postgres.query(
        "SELECT asset_key, check_name, execution_status FROM asset_check_executions WHERE run_id = %s", (run_id,))
    assert {json.loads(key)[-1] for key, _, _ in checks} == {spec.table for spec in STANDARD}
    assert {status for _, name, status in checks if name == "keys_unique"} == {"SUCCEEDED"}
