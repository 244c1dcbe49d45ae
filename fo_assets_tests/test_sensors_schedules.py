"""The Business Events sensor over a real inbox, the schedules' run requests, and the failure alert's text."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pytest

from fo_assets.definitions import build_definitions
from fo_assets.events.payload import intake
from fo_assets.events.inbox import SqliteInbox
from fo_assets.alerts import failure_message
from fo_assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from fo_assets.schedules import trailing_window
from fo_assets.sensors import run_key
from fo_assets_tests.support.events import TEST_MESSAGE, po_confirmed


def _invoice_posted(company: str, vendor: str, invoice: str, event_id: str, **naming: str) -> dict:
    return {"BusinessEventId": "VendorInvoicePostedBusinessEvent", "ControlNumber": 5637144700, "EventId": event_id,
            "EventTime": "/Date(1750000000000)/", "LegalEntity": company.upper(), "MajorVersion": 0,
            "MinorVersion": 0, **(naming or {"InvoiceAccount": vendor, "InvoiceId": invoice})}


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    sensor = defs.resolve_sensor_def("fo_business_events")
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs) as context:
        return sensor(context)


def test_sensor_turns_inbox_events_into_one_targeted_run_once(monkeypatch, tmp_path):
    monkeypatch.setenv("FO_ASSETS_HOME", str(tmp_path))
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    inbox = SqliteInbox(tmp_path / "events" / "inbox.sqlite3")
    first = po_confirmed("USMF-PO0000002", "usmf", "00000000-0000-0000-0000-000000000002")
    posts = [
        [first, first],  # a duplicate delivery in one post
        [po_confirmed("USMF-PO0000001", "usmf", "00000000-0000-0000-0000-000000000001")],  # older, arrives later
        [_invoice_posted("demf", "DEMF-V00001", "INV-0000007", "00000000-0000-0000-0000-000000000003")],
        # The other naming a vendor-invoice event is seen with names the same kind of record.
        [_invoice_posted("demf", "", "", "00000000-0000-0000-0000-000000000005",
                         VendorAccount="DEMF-V00002", InvoiceNumber="INV-0000008")],
        [{**first}],  # F&O's retry of the same event
        [TEST_MESSAGE],  # endpoint activation
        [{**po_confirmed("x", "usmf", "00000000-0000-0000-0000-000000000004"),
          "BusinessEventId": "VendorPaymentPostedBusinessEvent"}],  # no catalog entity listens to it
    ]
    for post in posts:
        inbox.append(intake(json.dumps(post)).events)

    result = _tick(defs, instance, None)
    (request,) = result.run_requests
    config = request.run_config["ops"]["refresh_records"]["config"]
    assert sorted(config["event_ids"]) == [f"00000000-0000-0000-0000-00000000000{i}" for i in (1, 2, 3, 5)]
    assert sorted((t["entity_set"], t["company"], tuple(sorted(t["lookup"].items()))) for t in config["targets"]) == [
        ("PurchaseOrderHeadersV2", "usmf", (("PurchaseOrderNumber", "USMF-PO0000001"),)),
        ("PurchaseOrderHeadersV2", "usmf", (("PurchaseOrderNumber", "USMF-PO0000002"),)),
        # Posted invoices: the event names the posted invoice, not a pending one.
        ("VendInvoiceJourBiEntities", "demf", (("InvoiceAccount", "DEMF-V00001"), ("InvoiceId", "INV-0000007"))),
        ("VendInvoiceJourBiEntities", "demf", (("InvoiceId", "INV-0000008"), ("OrderAccount", "DEMF-V00002"))),
    ]
    assert request.run_key == run_key(config["event_ids"])
    assert request.run_key == run_key(list(reversed(config["event_ids"])))  # order-free

    # The cursor moved past everything: the next tick requests nothing, and the job validates the config.
    again = _tick(defs, instance, result.cursor)
    assert not again.run_requests
    assert dg.validate_run_config(defs.resolve_job_def("fo_targeted_refresh"), request.run_config)


def test_sensor_skips_when_there_is_no_inbox(monkeypatch, tmp_path):
    monkeypatch.setenv("FO_ASSETS_HOME", str(tmp_path))
    defs = build_definitions()
    result = _tick(defs, dg.DagsterInstance.ephemeral(), None)
    assert not result.run_requests and "no event inbox" in str(result.skip_reason)


def _scheduled(name: str, when: dt.datetime) -> dg.RunRequest:
    """The one run request the schedule ``name`` makes at ``when``."""
    schedule = build_definitions().resolve_schedule_def(name)
    with dg.build_schedule_context(scheduled_execution_time=when) as context:
        return schedule.evaluate_tick(context).run_requests[0]


def test_daily_schedule_requests_the_trailing_window_as_one_run(monkeypatch, tmp_path):
    monkeypatch.setenv("FO_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("FO_TRAILING_DAYS", "5")
    request = _scheduled("fo_daily_trailing_window", dt.datetime(2026, 6, 15, 3, tzinfo=dt.timezone.utc))
    assert request.tags[RANGE_START_TAG] == "2026-06-11" and request.tags[RANGE_END_TAG] == "2026-06-15"
    assert request.run_key == "daily-2026-06-15"
    assert trailing_window(dt.date(2026, 1, 3), 7, dt.date(2026, 1, 1)) == (dt.date(2026, 1, 1), dt.date(2026, 1, 3))


def test_weekly_reconciliation_is_its_own_job_not_a_materialization_of_every_day(monkeypatch, tmp_path):
    monkeypatch.setenv("FO_ASSETS_HOME", str(tmp_path))
    schedule = build_definitions().resolve_schedule_def("fo_weekly_reconciliation")
    assert schedule.job_name == "fo_reconciliation" and schedule.cron_schedule == "0 4 * * 0"
    request = _scheduled("fo_weekly_reconciliation", dt.datetime(2026, 6, 14, 4, tzinfo=dt.timezone.utc))
    assert RANGE_START_TAG not in request.tags and "dagster/partition" not in request.tags


def test_one_bad_runtime_setting_leaves_the_code_location_loading(monkeypatch, tmp_path):
    monkeypatch.setenv("FO_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("FO_TRAILING_DAYS", "0")
    monkeypatch.setenv("FO_BASE_URL", "http://not-https.example")
    defs = build_definitions()  # loads: schedules, sensors and alerts stay up
    assert defs.resolve_sensor_def("fo_alert_on_failure") and defs.resolve_job_def("fo_entities_job")
    schedule = defs.resolve_schedule_def("fo_daily_trailing_window")
    when = dt.datetime(2026, 6, 15, 3, tzinfo=dt.timezone.utc)
    with dg.build_schedule_context(scheduled_execution_time=when) as context, \
            pytest.raises(dg.DagsterUserCodeExecutionError) as failed:
        schedule.evaluate_tick(context)
    # The tick fails with the setting's own message (the cause Dagster wraps).
    assert "FO_BASE_URL must start with https://" in str(failed.value.__cause__)


def test_failure_message_names_assets_partition_and_link():
    run = dg.DagsterRun(job_name="fo_entities_job", run_id="r-1",
                        tags={RANGE_START_TAG: "2026-06-01", RANGE_END_TAG: "2026-06-03"},
                        asset_selection=frozenset({dg.AssetKey(["fo", "vendors_v2"])}))
    text = failure_message(run, "VendorsV2 usmf: 401", "https://dagster.example/runs/r-1")
    assert text.splitlines() == [
        "fo-assets run failed: fo/vendors_v2 (partition 2026-06-01..2026-06-03)",
        "VendorsV2 usmf: 401",
        "https://dagster.example/runs/r-1",
    ]
