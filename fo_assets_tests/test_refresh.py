"""Event-driven pulls end to end: a change in F&O, its Business Event, the sensor, the targeted refresh."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg

from fo_assets.catalog import STANDARD
from fo_assets.checks import KEYS_UNIQUE
from fo_assets.definitions import ENTITY_JOB, build_definitions
from fo_assets.events.payload import intake
from fo_assets.events.inbox import SqliteInbox
from fo_assets.landing import Ledger
from fo_assets.partitions import range_tags
from fo_assets.refresh import SHOWN_EVENT_IDS, event_metadata
from fo_assets.sinks.local_delta import LocalDeltaSink
from fo_assets_tests.support.tenant import ANCHOR, point_at


def _rows(sink: LocalDeltaSink, entity_set: str) -> list[dict]:
    return sink.read(STANDARD.spec_for(entity_set)).to_pylist()


def _refresh(defs: dg.Definitions, instance: dg.DagsterInstance, events: list[dict], home) -> dg.ExecuteInProcessResult:
    inbox = SqliteInbox(home / "events" / "inbox.sqlite3")
    inbox.append(intake(json.dumps(events + events, default=str)).events)  # every event delivered twice
    with dg.build_sensor_context(instance=instance, definitions=defs) as context:
        (request,) = defs.resolve_sensor_def("fo_business_events")(context).run_requests
    result = defs.resolve_job_def("fo_targeted_refresh").execute_in_process(
        run_config=request.run_config, instance=instance)
    assert result.success
    return result


def test_events_re_read_changed_orders_and_posted_invoices_with_their_lines(fresh_sandbox, monkeypatch, tmp_path):
    point_at(monkeypatch, fresh_sandbox, tmp_path)
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    first = ANCHOR - dt.timedelta(days=1)
    entity_sets = ("PurchaseOrderHeadersV2", "PurchaseOrderLinesV2", "VendInvoiceJourBiEntities",
                   "VendInvoiceTransBiEntities")
    assert defs.resolve_job_def(ENTITY_JOB).execute_in_process(
        instance=instance, tags=range_tags(first, ANCHOR),
        asset_selection=[dg.AssetKey(STANDARD.spec_for(s).asset_key_path) for s in entity_sets],
    ).success

    tenant = fresh_sandbox.tenant
    po = next(r for r in tenant.rows("PurchaseOrderHeadersV2", "demf") if r["AccountingDate"].startswith(str(first)))
    key = {"dataAreaId": "demf", "PurchaseOrderNumber": po["PurchaseOrderNumber"]}
    fresh_sandbox.changes.update("PurchaseOrderHeadersV2", key, {"PurchaseOrderStatus": "Received"})
    line = next(r for r in tenant.rows("PurchaseOrderLinesV2", "demf") if r["PurchaseOrderNumber"] == po["PurchaseOrderNumber"])
    fresh_sandbox.changes.update("PurchaseOrderLinesV2", {**key, "LineNumber": line["LineNumber"]},
                                 {"LineDescription": "changed with its header"})
    # A pending invoice is posted: it leaves the pending entities and becomes a posted one (new lines too).
    pending = next(r for r in tenant.rows("VendorInvoiceHeaders", "usmf") if r["InvoiceDate"] >= str(first))
    posted = fresh_sandbox.changes.post_invoice("usmf", pending["HeaderReference"])
    (journal,) = tenant.select("VendInvoiceJourBiEntities", "usmf", SourceKey=posted["SourceKey"])
    events = [fresh_sandbox.events.purchase_order_confirmed("demf", po["PurchaseOrderNumber"]),
              fresh_sandbox.events.vendor_invoice_posted("usmf", journal["InvoiceAccount"], journal["InvoiceId"])]
    before = {b.batch_id for b in Ledger(tmp_path).batches()}
    result = _refresh(defs, instance, events, tmp_path)

    sink = LocalDeltaSink(tmp_path / "delta")
    header = next(r for r in _rows(sink, "PurchaseOrderHeadersV2")
                  if (r["dataAreaId"], r["PurchaseOrderNumber"]) == ("demf", po["PurchaseOrderNumber"]))
    assert header["PurchaseOrderStatus"] == "Received"
    lines = [r for r in _rows(sink, "PurchaseOrderLinesV2")
             if (r["dataAreaId"], r["PurchaseOrderNumber"]) == ("demf", po["PurchaseOrderNumber"])]
    assert {r["LineDescription"] for r in lines if r["LineNumber"] == line["LineNumber"]} == {"changed with its header"}
    invoices = [r for r in _rows(sink, "VendInvoiceJourBiEntities") if r["SourceKey"] == posted["SourceKey"]]
    assert [r["InvoiceId"] for r in invoices] == [pending["InvoiceNumber"]]
    posted_lines = [r for r in _rows(sink, "VendInvoiceTransBiEntities")
                    if (r["InvoiceId"], r["InternalInvoiceId"]) == (journal["InvoiceId"], journal["InternalInvoiceId"])]
    assert posted_lines and len(posted_lines) == len(tenant.select(
        "VendInvoiceTransBiEntities", "usmf", InvoiceId=journal["InvoiceId"], InternalInvoiceId=journal["InternalInvoiceId"]))

    # Keyed batches, never flagging deletes.
    new = [b for b in Ledger(tmp_path).batches() if b.batch_id not in before]
    assert {b.manifest.mode for b in new} == {"keys"} and all(not b.manifest.delete_scopes for b in new)
    assert {b.manifest.entity_set for b in new} == set(entity_sets)
    # Recorded as what they are: observations of the days the records belong to, not materializations of
    # whole days; and the table check that guards the model ran after them.
    assert not result.asset_materializations_for_node("refresh_records")
    observations = [x.event_specific_data.asset_observation for x in result.all_events
                    if x.event_type_value == "ASSET_OBSERVATION"]
    observed = {(e.asset_key.to_user_string(), e.partition) for e in observations}
    assert {e.metadata["fo/events"].value for e in observations} == {2}
    assert {e.metadata["fo/event_ids"].value for e in observations} == {
        ", ".join(event["EventId"].upper() for event in events)}
    assert ("fo/purchase_order_headers_v2", str(first)) in observed
    assert ("fo/purchase_order_lines_v2", str(first)) in observed
    assert ("fo/vend_invoice_jour_bi_entities", journal["InvoiceDate"][:10]) in observed
    checked = {(e.event_specific_data.asset_key.to_user_string(), e.event_specific_data.check_name)
               for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert ("fo/purchase_order_headers_v2", KEYS_UNIQUE) in checked
    # Partition status and freshness only move with real loads.
    key_orders = dg.AssetKey(["fo", "purchase_order_headers_v2"])
    assert instance.get_latest_materialization_event(key_orders).run_id != result.run_id


def test_the_other_naming_of_a_posted_invoice_event_refreshes_the_same_invoice(fresh_sandbox, monkeypatch, tmp_path):
    point_at(monkeypatch, fresh_sandbox, tmp_path)
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    journal = fresh_sandbox.tenant.rows("VendInvoiceJourBiEntities", "gbsi")[0]
    event = fresh_sandbox.events.vendor_invoice_posted("gbsi", journal["InvoiceAccount"], journal["InvoiceId"],
                                                       naming="vendor")
    assert "VendorAccount" in event and "InvoiceAccount" not in event
    _refresh(defs, instance, [event], tmp_path)
    landed = [r for r in _rows(LocalDeltaSink(tmp_path / "delta"), "VendInvoiceJourBiEntities")
              if r["InvoiceId"] == journal["InvoiceId"]]
    assert {r["SourceKey"] for r in landed} >= {journal["SourceKey"]}


def test_observations_name_a_few_of_many_coalesced_events():
    # A tick may coalesce 2,000 events into one run; every observation is kept in the event log.
    ids = [f"{n:08X}-0000-0000-0000-000000000000" for n in range(2_000)]
    metadata = event_metadata(ids)
    assert metadata["fo/events"] == 2_000
    assert metadata["fo/event_ids"] == ", ".join(ids[:SHOWN_EVENT_IDS]) + f" and {2_000 - SHOWN_EVENT_IDS} more"
    assert event_metadata(ids[:3])["fo/event_ids"] == ", ".join(ids[:3])
