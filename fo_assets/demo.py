"""`fo-assets demo`: the whole flow on a laptop, on the embedded F&O sandbox and local Delta tables.

1. starts the sandbox (real HTTPS and OAuth) and the Business Events receiver;
2. materializes every entity asset for the last 7 days in one run;
3. renames a purchase order and posts a pending vendor invoice in the sandbox, and emits their Business
   Events; the sensor turns the events into a targeted refresh that lands the changed rows;
4. runs the local model and prints a summary.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from fo_assets.catalog import EntitySpec
from fo_assets.definitions import ENTITY_JOB, build_definitions
from fo_assets.events.inbox import Inbox, open_inbox
from fo_assets.events.receiver import build_server, create_app
from fo_assets.landing import DELETED
from fo_assets.partitions import range_tags
from fo_assets.sandbox import Sandbox, SandboxConfig
from fo_assets.settings import load_settings
from fo_assets.sinks.local_delta import LocalDeltaSink

DEMO_DAYS = 7


def _step(message: str) -> float:
    print(f"\n==> {message}", flush=True)
    return time.monotonic()


def _done(started: float, what: str) -> None:
    print(f"    {what} in {time.monotonic() - started:.1f} s", flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def events_receiver(inbox: Inbox, secret: str, certfile: Path, keyfile: Path) -> Iterator[str]:
    """The HTTPS receiver F&O posts Business Events to, on a free loopback port, in a thread."""
    port = _free_port()
    server = build_server(create_app(inbox, secret), "127.0.0.1", port,
                          certfile=certfile, keyfile=keyfile, configure_logging=False)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"https://127.0.0.1:{port}/events"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def live_rows(delta_root: Path, spec: EntitySpec) -> list[dict]:
    """The rows of a local Delta table that are not flagged deleted."""
    return [row for row in LocalDeltaSink(delta_root).read(spec).to_pylist() if not row[DELETED]]


def run_demo(home: Path | None = None) -> int:
    """`fo-assets demo`: the whole flow on the sandbox and local Delta tables; returns the exit code."""
    started_all = time.monotonic()
    if home is not None:
        os.environ["FO_ASSETS_HOME"] = str(home)
    t = _step("starting the F&O sandbox (HTTPS, Entra-style token endpoint, 3 legal entities)")
    with Sandbox(SandboxConfig(companies=("usmf", "demf", "gbsi"))) as sandbox:
        # The demo plays the operator who exports what `fo-assets sandbox serve` prints.
        os.environ.update(sandbox.env())
        events_secret = secrets.token_urlsafe(24)
        settings = load_settings()
        print(f"    F&O at {sandbox.base_url}, state in {settings.home}")
        _done(t, "sandbox ready")

        definitions = build_definitions()
        instance = dg.DagsterInstance.get()
        today = dt.datetime.now(dt.UTC).date()
        first = today - dt.timedelta(days=DEMO_DAYS - 1)

        t = _step(f"materializing every entity for {first}..{today} as one run")
        result = definitions.resolve_job_def(ENTITY_JOB).execute_in_process(
            instance=instance, tags=range_tags(first, today), raise_on_error=True
        )
        # One materialization per day of the range (once for an entity read whole); the load's metadata is
        # the same on each day.
        loads = {e.step_materialization_data.materialization.asset_key: e.step_materialization_data.materialization
                 for e in result.get_asset_materialization_events()}
        for mat in loads.values():
            md = mat.metadata
            print(f"    {mat.asset_key.to_user_string():48s} rows read {md['fo/rows_read'].value:>7}  "
                  f"inserted {md['fo/inserted'].value:>7}  requests {md['fo/requests'].value:>4}")
        _done(t, "entities landed")

        t = _step("changing records in F&O and emitting Business Events")
        tls = sandbox.tls
        with events_receiver(open_inbox(settings), events_secret, tls.cert_path, tls.key_path) as url:
            po = sandbox.tenant.rows("PurchaseOrderHeadersV2", "usmf")[-1]
            new_name = f"Changed by the demo at {dt.datetime.now(dt.UTC):%H:%M:%S}"
            sandbox.changes.update("PurchaseOrderHeadersV2",
                                   {"dataAreaId": "usmf", "PurchaseOrderNumber": po["PurchaseOrderNumber"]},
                                   {"PurchaseOrderName": new_name})
            pending = sandbox.tenant.rows("VendorInvoiceHeaders", "usmf")[-1]
            posted = sandbox.changes.post_invoice("usmf", pending["HeaderReference"])
            events = sandbox.events.for_changes()
            sandbox.events.emit(f"{url}?code={events_secret}", [*events, events[0]], ca_bundle=sandbox.ca_path)
            print(f"    purchase order {po['PurchaseOrderNumber']} renamed, pending invoice "
                  f"{pending['HeaderReference']} posted; {len(events)} events posted, one of them twice (a duplicate)")
        sensor = definitions.resolve_sensor_def("fo_business_events")
        with dg.build_sensor_context(instance=instance, definitions=definitions) as context:
            requests = sensor.evaluate_tick(context).run_requests or []
        print(f"    sensor: {len(requests)} targeted run(s) for the new events")
        refresh = definitions.resolve_job_def("fo_targeted_refresh")
        for request in requests:
            refresh.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)
        orders = settings.catalog.spec_for("PurchaseOrderHeadersV2")
        landed = [r for r in live_rows(settings.delta_root, orders)
                  if r["PurchaseOrderNumber"] == po["PurchaseOrderNumber"] and r["dataAreaId"] == "usmf"]
        assert landed and landed[0]["PurchaseOrderName"] == new_name, "the event-driven update did not land"
        print(f"    landed: {orders.table} {po['PurchaseOrderNumber']} -> {landed[0]['PurchaseOrderName']!r}")
        journal = settings.catalog.spec_for("VendInvoiceJourBiEntities")
        invoice = [r for r in live_rows(settings.delta_root, journal)
                   if r["SourceKey"] == posted["SourceKey"] and r["dataAreaId"] == "usmf"]
        assert invoice, "the posted invoice's event did not land it"
        print(f"    landed: {journal.table} invoice {invoice[0]['InvoiceId']} of {invoice[0]['InvoiceAccount']}")
        _done(t, "events to updated rows")

        t = _step("running the model (DuckDB over the local Delta tables)")
        model = dg.materialize(
            [definitions.get_assets_def(dg.AssetKey(["fo_model", name]))
             for name in ("trial_balance", "spend_by_vendor_month", "po_invoice_match")],
            instance=instance,
            resources={"fo": (definitions.resources or {})["fo"]},
        )
        for materialized in model.get_asset_materialization_events():
            mat = materialized.step_materialization_data.materialization
            print(f"    {mat.asset_key.to_user_string():35s} {mat.metadata['dagster/row_count'].value:>6} rows")
        _done(t, "model built")

    print("\n==> summary")
    width = max(len(spec.table) for spec in settings.catalog)
    for spec in settings.catalog:
        print(f"    {spec.table:{width}s} {len(live_rows(settings.delta_root, spec)):>7} live rows")
    print(f"\n    local Delta tables: {settings.delta_root}")
    print(f"    landed batches and manifests: {settings.home / 'landing'}")
    print(f"    Dagster runs: {instance.root_directory}")
    print("    open the UI with `make dev` (sandbox, events receiver and dagster dev wired together)")
    print(f"    whole demo: {time.monotonic() - started_all:.1f} s")
    return 0
