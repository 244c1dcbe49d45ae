"""The soak's world: a sandbox tenant, the events receiver, a Dagster instance on disk, and the runs.

Everything goes through the real entry points: records change in the sandbox, their Business Events
go over HTTPS to the receiver (duplicated, shuffled), the ``fo_business_events`` sensor turns the
inbox into targeted-refresh runs, and the ``fo_daily_trailing_window`` and ``fo_weekly_reconciliation``
schedules produce the entity runs.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import secrets
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from fo_assets.definitions import build_definitions
from fo_assets.demo import events_receiver
from fo_assets.events.inbox import open_inbox
from fo_assets.sandbox import Sandbox, SandboxConfig
from fo_assets.settings import load_settings

# Runs print their events at WARNING and above only: a soak's output is its report.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class Counts:
    runs: dict[str, int] = field(default_factory=lambda: {"succeeded": 0, "failed": 0})
    rows_read: int = 0
    rows_written: int = 0  # inserted + updated + flagged deleted
    events_posted: int = 0
    changes: int = 0
    failures: list[str] = field(default_factory=list)


class World:
    def __init__(self, scale: float, seed: int, root: Path | None = None):
        self.rng = random.Random(seed)
        self.counts = Counts()
        self._stack = ExitStack()
        self.root = root or Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="fo-soak-")))
        self.today = dt.datetime.now(dt.timezone.utc).date()
        self.sandbox = self._stack.enter_context(Sandbox(SandboxConfig(seed=seed, scale=scale, days=30,
                                                                       anchor_date=self.today)))
        # The soak plays the operator: the configuration is the process environment, as in production.
        os.environ.update({**self.sandbox.env(), "FO_ASSETS_HOME": str(self.root / "home"),
                           "FO_PARTITIONS_START": (self.today - dt.timedelta(days=40)).isoformat()})
        self.events_secret = secrets.token_urlsafe(24)
        os.environ["FO_EVENTS_SECRET"] = self.events_secret
        tls = self.sandbox.tls
        inbox = open_inbox(load_settings())  # the inbox the environment names, as the sensor opens it
        url = self._stack.enter_context(events_receiver(inbox, self.events_secret, tls.cert_path, tls.key_path))
        self.events_url = f"{url}?code={self.events_secret}"
        # On disk, like a deployment's instance: an in-memory one would hold every event and look like a leak.
        (self.root / "dagster").mkdir()
        self.instance = dg.DagsterInstance.local_temp(str(self.root / "dagster"),
                                                      overrides={"telemetry": {"enabled": False}})
        self.definitions = build_definitions()
        self._cursor: str | None = None
        self._vendor_serial = 0
        self.changed_orders: set[tuple[str, str]] = set()

    def close(self) -> None:
        self.instance.dispose()
        self._stack.close()

    # -- F&O changes and their events ----------------------------------------------------------------

    def change_records(self, tick: int) -> None:
        """Purchase orders renamed (evented), vendors added, changed and removed, an old posting edited."""
        changes, rng = self.sandbox.changes, self.rng
        for _ in range(rng.randint(1, 3)):
            company = rng.choice(self.sandbox.cfg.companies)
            order = rng.choice(self.sandbox.tenant.rows("PurchaseOrderHeadersV2", company))
            key = {"dataAreaId": company, "PurchaseOrderNumber": order["PurchaseOrderNumber"]}
            changes.update("PurchaseOrderHeadersV2", key, {"PurchaseOrderName": f"soak tick {tick}"})
            self.changed_orders.add((company, order["PurchaseOrderNumber"]))
        company = rng.choice(self.sandbox.cfg.companies)
        vendors = self.sandbox.tenant.rows("VendorsV2", company)

        def some_vendor() -> dict[str, str]:
            return {"dataAreaId": company, "VendorAccountNumber": rng.choice(vendors)["VendorAccountNumber"]}

        if rng.random() < 0.4:
            self._vendor_serial += 1
            new = {"dataAreaId": company, "VendorAccountNumber": f"SOAK-{self._vendor_serial:05d}",
                   "VendorOrganizationName": f"Soak vendor {tick}"}
            changes.insert("VendorsV2", new)
        if rng.random() < 0.3 and vendors:
            changes.update("VendorsV2", some_vendor(), {"VendorGroupId": f"G{tick % 97}"})
        if rng.random() < 0.2 and len(vendors) > 5:
            changes.delete("VendorsV2", some_vendor())
        if rng.random() < 0.3:  # outside any trailing window: only the reconciliation will see it
            tenant, cutoff = self.sandbox.tenant, (self.today - dt.timedelta(days=20)).isoformat()
            vouchers = {r["SourceKey"] for r in tenant.rows("GeneralJournalEntryBiEntities", company)
                        if r["AccountingDate"][:10] < cutoff}
            old = [r for r in tenant.rows("GeneralJournalAccountEntryBiEntities", company)
                   if r["GeneralJournalEntry"] in vouchers]
            if old:
                entry = rng.choice(old)
                changes.update("GeneralJournalAccountEntryBiEntities", {"SourceKey": entry["SourceKey"]},
                               {"Text": f"corrected at tick {tick}"})
        self.counts.changes = len(changes.log)

    def post_events(self) -> None:
        events = self.sandbox.events.for_changes()
        if not events:
            return
        statuses = self.sandbox.events.emit(self.events_url, events, ca_bundle=self.sandbox.ca_path, duplicates=True,
                                            shuffle=True, batch=self.rng.random() < 0.3)
        if any(status != 202 for status in statuses):
            self.counts.failures.append(f"the receiver answered {sorted(set(statuses))} to an events post")
        self.counts.events_posted += len(events)

    # -- runs ----------------------------------------------------------------------------------------

    def refresh_from_events(self) -> None:
        """One sensor tick, and the targeted-refresh runs it asks for."""
        sensor = self.definitions.resolve_sensor_def("fo_business_events")
        context = dg.build_sensor_context(instance=self.instance, cursor=self._cursor, definitions=self.definitions)
        with context:
            tick = sensor(context)
        self._cursor = tick.cursor or self._cursor
        job = self.definitions.resolve_job_def("fo_targeted_refresh")
        for request in tick.run_requests or []:
            self._execute(job, {**request.run_config, **QUIET}, request.tags)

    def scheduled_run(self, schedule: str) -> bool:
        """The run a schedule asks for at this moment, of the job it names (the daily trailing window of the
        entity job, or the weekly reconciliation job)."""
        definition = self.definitions.resolve_schedule_def(schedule)
        now = dt.datetime.now(dt.timezone.utc)
        with dg.build_schedule_context(instance=self.instance, scheduled_execution_time=now) as context:
            (request,) = definition.evaluate_tick(context).run_requests or ()
        return self._execute(self.definitions.resolve_job_def(definition.job_name), QUIET, request.tags)

    def _execute(self, job: Any, run_config: dict, tags: dict[str, str]) -> bool:
        result = job.execute_in_process(run_config=run_config, instance=self.instance, tags=tags, raise_on_error=False)
        self.counts.runs["succeeded" if result.success else "failed"] += 1
        loads = {}  # one per batch: a range run repeats the load's metadata on every day of it
        for event in result.get_asset_materialization_events():
            metadata = event.step_materialization_data.materialization.metadata
            if "fo/batch_id" in metadata:
                loads[metadata["fo/batch_id"].value] = metadata
        for metadata in loads.values():
            self.counts.rows_read += metadata["fo/rows_read"].value
            self.counts.rows_written += sum(metadata[k].value for k in ("fo/inserted", "fo/updated", "fo/deleted"))
        if not result.success:
            failure = next((e.message for e in result.all_events if e.is_step_failure), "unknown failure")
            self.counts.failures.append(f"{job.name}: {(failure or '')[:300]}")
        return result.success
