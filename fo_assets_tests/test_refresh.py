"""Event-driven pulls end to end: a change in F&O, its Business Event, the sensor, the targeted refresh."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg

from fo_assets.catalog import STANDARD
from fo_assets.definitions import ENTITY_JOB, build_definitions
from fo_assets.dynamics.events import intake
from fo_assets.inbox import SqliteInbox
from fo_assets.landing import Ledger
from fo_assets.partitions import range_tags
from fo_assets.sinks.local_delta import LocalDeltaSink
from fo_assets_tests.conftest import ANCHOR, point_at


def _rows(sink: LocalDeltaSink, entity_set: str) -> list[dict]:
    return sink.read(STANDARD.spec_for(entity_set)).to_pylist()


def test_events_re_read_changed_headers_and_their_lines(fresh_sandbox, monkeypatch, tmp_path):
    point_at(monkeypatch, fresh_sandbox, tmp_path)
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    first = ANCHOR - dt.timedelta(days=1)
    assert defs.resolve_job_def(ENTITY_JOB).execute_in_process(
        instance=instance, tags=range_tags(first, ANCHOR),
        asset_selection=[dg.AssetKey(STANDARD.spec_for(s).asset_key_path) for s in
                         ("PurchaseOrderHeadersV2", "PurchaseOrderLinesV2", "VendorInvoiceHeaders", "VendorInvoiceLines")],
    ).success

    tenant = fresh_sandbox.tenant
    po = next(r for r in tenant.rows("PurchaseOrderHeadersV2", "demf") if r["AccountingDate"].startswith(str(first)))
    key = {"dataAreaId": "demf", "PurchaseOrderNumber": po["PurchaseOrderNumber"]}
    fresh_sandbox.changes.update("PurchaseOrderHeadersV2", key, {"PurchaseOrderStatus": "Received"})
    line = next(r for r in tenant.rows("PurchaseOrderLinesV2", "demf") if r["PurchaseOrderNumber"] == po["PurchaseOrderNumber"])
    fresh_sandbox.changes.update("PurchaseOrderLinesV2", {**key, "LineNumber": line["LineNumber"]},
                                 {"LineDescription": "changed with its header"})
    invoice = tenant.rows("VendorInvoiceHeaders", "usmf")[0]
    fresh_sandbox.changes.update("VendorInvoiceHeaders", {"dataAreaId": "usmf", "HeaderReference": invoice["HeaderReference"]},
                                 {"InvoiceDescription": "re-read by vendor and invoice number"})
    events = [fresh_sandbox.events.purchase_order_confirmed("demf", po["PurchaseOrderNumber"]),
              fresh_sandbox.events.vendor_invoice_posted("usmf", invoice["VendorAccount"], invoice["InvoiceNumber"])]
    inbox = SqliteInbox(tmp_path / "events" / "inbox.sqlite3")
    inbox.append(intake(json.dumps(events + events, default=str)).events)

    with dg.build_sensor_context(instance=instance, definitions=defs) as context:
        (request,) = defs.resolve_sensor_def("fo_business_events")(context).run_requests
    before = {b.batch_id for b in Ledger(tmp_path).batches()}
    result = defs.resolve_job_def("fo_targeted_refresh").execute_in_process(
        run_config=request.run_config, instance=instance)
    assert result.success

    sink = LocalDeltaSink(tmp_path / "delta")
    header = next(r for r in _rows(sink, "PurchaseOrderHeadersV2")
                  if (r["dataAreaId"], r["PurchaseOrderNumber"]) == ("demf", po["PurchaseOrderNumber"]))
    assert header["PurchaseOrderStatus"] == "Received"
    lines = [r for r in _rows(sink, "PurchaseOrderLinesV2")
             if (r["dataAreaId"], r["PurchaseOrderNumber"]) == ("demf", po["PurchaseOrderNumber"])]
    assert {r["LineDescription"] for r in lines if r["LineNumber"] == line["LineNumber"]} == {"changed with its header"}
    assert len(lines) == len([r for r in tenant.rows("PurchaseOrderLinesV2", "demf")
                              if r["PurchaseOrderNumber"] == po["PurchaseOrderNumber"]])
    invoice_row = next(r for r in _rows(sink, "VendorInvoiceHeaders")
                       if (r["dataAreaId"], r["HeaderReference"]) == ("usmf", invoice["HeaderReference"]))
    assert invoice_row["InvoiceDescription"] == "re-read by vendor and invoice number"

    # Keyed batches, never flagging deletes; the re-read records' days are materialized again.
    new = [b for b in Ledger(tmp_path).batches() if b.batch_id not in before]
    assert {b.manifest.mode for b in new} == {"keys"} and all(not b.manifest.delete_scopes for b in new)
    assert {b.manifest.entity_set for b in new} == {
        "PurchaseOrderHeadersV2", "PurchaseOrderLinesV2", "VendorInvoiceHeaders", "VendorInvoiceLines"}
    materialized = {(m.asset_key.to_user_string(), m.partition) for m in result.asset_materializations_for_node("refresh_records")}
    assert ("fo/purchase_order_headers_v2", str(first)) in materialized
    assert ("fo/purchase_order_lines_v2", str(first)) in materialized
    assert ("fo/vendor_invoice_headers", invoice["InvoiceDate"][:10]) in materialized
