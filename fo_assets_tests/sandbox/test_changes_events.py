"""Changes show up in the next OData read; Business Events reach an HTTPS endpoint in the real shape."""

from __future__ import annotations

import datetime as dt
import json
import re
import ssl
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from fo_assets.sandbox import Sandbox
from fo_assets.sandbox.cli import main as cli_main

from .conftest import read_all

PO_KEY = {"dataAreaId": "usmf", "PurchaseOrderNumber": "USMF-PO0000003"}
GUID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$")


def _po(client: httpx.Client, number: str) -> list[dict]:
    return client.get("/data/PurchaseOrderHeadersV2", params={"$filter": f"PurchaseOrderNumber eq '{number}'"}).json(
        parse_float=Decimal
    )["value"]


def _admin_args(sandbox: Sandbox) -> list[str]:
    """How the CLI finds a running sandbox's admin endpoint."""
    return ["--base-url", sandbox.base_url, "--admin-token", sandbox.admin_token, "--ca-bundle", str(sandbox.ca_path)]


def test_update_insert_delete_are_visible_over_odata(sandbox: Sandbox, client: httpx.Client) -> None:
    before = _po(client, "USMF-PO0000003")[0]
    new_status = "Canceled" if before["PurchaseOrderStatus"] != "Canceled" else "Received"
    sandbox.changes.update(
        "PurchaseOrderHeadersV2", PO_KEY, {"PurchaseOrderStatus": new_status, "TotalDiscountPercentage": "12.5"}
    )
    after = _po(client, "USMF-PO0000003")[0]
    assert after["PurchaseOrderStatus"] == new_status and after["TotalDiscountPercentage"] == Decimal("12.5")
    assert after["@odata.etag"] != before["@odata.etag"]

    count = int(client.get("/data/VendorsV2/$count").text)
    sandbox.changes.insert(
        "VendorsV2",
        {
            "VendorAccountNumber": "USMF-V00000A",
            "VendorOrganizationName": "New Co",
            "CreditLimit": Decimal("98765.4321"),
        },
    )
    rows, _ = read_all(client, "/data/VendorsV2", {"$orderby": "dataAreaId,VendorAccountNumber"})
    assert len(rows) == count + 1
    inserted = next(r for r in rows if r["VendorAccountNumber"] == "USMF-V00000A")
    assert inserted["CreditLimit"] == Decimal("98765.4321") and inserted["VendorGroupId"] == ""
    assert [r["VendorAccountNumber"] for r in rows] == [
        r["VendorAccountNumber"] for r in sandbox.tenant.rows("VendorsV2", "usmf")
    ]

    sandbox.changes.delete("PurchaseOrderHeadersV2", PO_KEY)
    assert _po(client, "USMF-PO0000003") == []
    with pytest.raises(KeyError):
        sandbox.changes.delete("PurchaseOrderHeadersV2", PO_KEY)


def test_changes_through_the_admin_endpoint_and_cli(
    sandbox: Sandbox, client: httpx.Client, capsys: pytest.CaptureFixture
) -> None:
    admin = {"X-Sandbox-Admin-Token": sandbox.admin_token}
    bad = client.post(
        "/_sandbox/changes",
        headers=admin,
        json={
            "op": "update",
            "entity_set": "PurchaseOrderHeadersV2",
            "key": PO_KEY,
            "values": {"PurchaseOrderStatus": "Bogus"},
        },
    )
    assert bad.status_code == 400 and "not a symbol of enum PurchStatus" in bad.json()["error"]
    argv = [
        "change",
        "update",
        "PurchaseOrderHeadersV2",
        *_admin_args(sandbox),
        "--key",
        "dataAreaId=usmf",
        "--key",
        "PurchaseOrderNumber=USMF-PO0000003",
        "--set",
        "VendorOrderReference=CLI-42",
    ]
    assert cli_main(argv) == 0
    assert json.loads(capsys.readouterr().out) == PO_KEY
    assert _po(client, "USMF-PO0000003")[0]["VendorOrderReference"] == "CLI-42"


class _Receiver(ThreadingHTTPServer):
    posts: list[Any]


@pytest.fixture
def receiver(sandbox: Sandbox) -> Iterator[tuple[str, list[Any]]]:
    """A tiny HTTPS endpoint (certificate from the sandbox CA) that records every JSON post."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            self.server.posts.append(json.loads(body, parse_float=Decimal))  # type: ignore[attr-defined]
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = _Receiver(("127.0.0.1", 0), Handler)
    server.posts = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sandbox.tls.cert_path, sandbox.tls.key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/events", server.posts
    server.shutdown()
    server.server_close()


def _check_envelope(event: dict, business_event_id: str, company: str) -> None:
    assert event["BusinessEventId"] == business_event_id
    assert event["LegalEntity"].lower() == company and event["BusinessEventLegalEntity"] == event["LegalEntity"]
    assert GUID.match(event["EventId"])
    millis = int(re.fullmatch(r"/Date\((\d+)\)/", event["EventTime"]).group(1))
    iso = dt.datetime.fromisoformat(event["EventTimeIso8601"].replace("Z", "+00:00"))
    assert abs(iso.timestamp() * 1000 - millis) < 1000
    assert event["MajorVersion"] == 0 and event["MinorVersion"] == 0 and isinstance(event["ControlNumber"], int)


def test_events_carry_the_documented_payload(sandbox: Sandbox, receiver: tuple[str, list]) -> None:
    url, posts = receiver
    po = sandbox.events.purchase_order_confirmed("USMF", "USMF-PO0000002")
    invoice = sandbox.tenant.rows("VendInvoiceJourBiEntities", "usmf")[-1]
    posted = sandbox.events.vendor_invoice_posted("usmf", invoice["InvoiceAccount"], invoice["InvoiceId"])
    assert sandbox.events.emit(url, [po, posted], ca_bundle=sandbox.ca_path) == [202, 202]
    assert len(posts) == 2
    got_po, got_invoice = posts
    _check_envelope(got_po, "PurchaseOrderConfirmedBusinessEvent", "usmf")
    header = next(
        r for r in sandbox.tenant.rows("PurchaseOrderHeadersV2", "usmf") if r["PurchaseOrderNumber"] == "USMF-PO0000002"
    )
    lines = [
        r for r in sandbox.tenant.rows("PurchaseOrderLinesV2", "usmf") if r["PurchaseOrderNumber"] == "USMF-PO0000002"
    ]
    assert got_po["PurchaseOrderNumber"] == "USMF-PO0000002"
    assert got_po["VendorAccount"] == header["OrderVendorAccountNumber"]
    assert got_po["TransactionCurrencyAmount"] == sum(r["LineAmount"] for r in lines)
    assert got_po["TransactionCurrencyCode"] == header["CurrencyCode"] and got_po["PurchaseType"] == "Purch"
    _check_envelope(got_invoice, "VendorInvoicePostedBusinessEvent", "usmf")
    names = ("InvoiceAccount", "InvoiceId")
    assert [got_invoice[k] for k in names] == [invoice[k] for k in names]
    assert got_invoice["InvoiceAmountInAccountingCurrency"] == invoice["InvoiceAmountMST"]
    assert got_invoice["InvoiceTaxAmount"] == invoice["SumTax"] and got_invoice["PurchaseOrderId"] == invoice["PurchId"]
    assert got_invoice["ControlNumber"] > got_po["ControlNumber"]
    assert "VendorAccount" not in got_invoice and "InvoiceNumber" not in got_invoice


def test_the_invoice_event_can_name_the_vendor_instead(sandbox: Sandbox) -> None:
    invoice = sandbox.tenant.rows("VendInvoiceJourBiEntities", "usmf")[0]
    account, invoice_id = invoice["InvoiceAccount"], invoice["InvoiceId"]
    event = sandbox.events.vendor_invoice_posted("usmf", account, invoice_id, naming="vendor")
    assert (event["VendorAccount"], event["InvoiceNumber"]) == (invoice["OrderAccount"], invoice["InvoiceId"])
    assert event["InvoiceAmount"] == invoice["InvoiceAmount"] and "InvoiceAccount" not in event
    with pytest.raises(KeyError, match="no single row"):  # a pending invoice has no posted event
        pending = sandbox.tenant.rows("VendorInvoiceHeaders", "usmf")[0]
        sandbox.events.vendor_invoice_posted("usmf", pending["InvoiceAccount"], pending["InvoiceNumber"])


def test_batches_duplicates_and_reordering(sandbox: Sandbox, receiver: tuple[str, list]) -> None:
    url, posts = receiver
    events = [sandbox.events.purchase_order_confirmed("usmf", f"USMF-PO000000{i}") for i in range(1, 9)]
    controls = [e["ControlNumber"] for e in events]
    assert controls == sorted(controls) and len(set(controls)) == 8 and controls[-1] - controls[0] > 7  # gaps
    assert {e["LegalEntity"] for e in events} == {"usmf", "USMF"}  # legal entity in either case
    assert sandbox.events.emit(url, events, ca_bundle=sandbox.ca_path, batch=True) == [202]
    assert posts.pop() == events  # one array, exact amounts
    sandbox.events.emit(url, events, ca_bundle=sandbox.ca_path, duplicates=True, shuffle=True)
    ids = [p["EventId"] for p in posts]
    assert set(ids) == {e["EventId"] for e in events} and len(ids) > len(events)
    assert ids[: len(events)] != [e["EventId"] for e in events]


def test_emit_changed_sends_events_for_changed_records(
    sandbox: Sandbox, receiver: tuple[str, list], capsys: pytest.CaptureFixture
) -> None:
    url, posts = receiver
    sandbox.changes.update("PurchaseOrderHeadersV2", PO_KEY, {"DocumentApprovalStatus": "Confirmed"})
    sandbox.changes.update("VendorsV2", {"VendorAccountNumber": "USMF-V00001"}, {"CreditLimit": 1})  # no event
    pending = sandbox.tenant.rows("VendorInvoiceHeaders", "demf")[1]
    argv = ["emit", *_admin_args(sandbox), "--url", url, "--receiver-ca", str(sandbox.ca_path), "--changed"]
    assert cli_main(["post-invoice", *_admin_args(sandbox), "demf", pending["HeaderReference"]]) == 0
    assert cli_main(argv) == 0
    assert [(p["BusinessEventId"], p.get("PurchaseOrderNumber"), p.get("InvoiceId")) for p in posts] == [
        ("PurchaseOrderConfirmedBusinessEvent", "USMF-PO0000003", None),
        ("VendorInvoicePostedBusinessEvent", None, pending["InvoiceNumber"]),
    ]
    assert posts[1]["LegalEntity"].lower() == "demf" and posts[1]["InvoiceAccount"] == pending["InvoiceAccount"]
    assert cli_main(argv) == 0 and len(posts) == 2  # already emitted: nothing new


def test_posting_moves_a_pending_invoice_to_the_posted_entities(sandbox: Sandbox, client: httpx.Client) -> None:
    pending = next(
        h
        for h in sandbox.tenant.rows("VendorInvoiceHeaders", "usmf")
        if h["PurchaseOrderNumber"] and not h["InvoiceDate"].startswith("1900")
    )
    lines = sandbox.tenant.select("VendorInvoiceLines", "usmf", HeaderReference=pending["HeaderReference"])
    headers_before = sandbox.tenant.rows("VendInvoiceJourBiEntities")
    lines_before = sandbox.tenant.rows("VendInvoiceTransBiEntities")
    at = dt.datetime(2026, 6, 16, 9, 30, tzinfo=dt.UTC)
    key = sandbox.changes.post_invoice("USMF", pending["HeaderReference"], at=at)
    assert key == {"dataAreaId": sandbox.tenant.company_value("VendInvoiceJourBiEntities", "usmf"),
                   "SourceKey": max(h["SourceKey"] for h in headers_before) + 1}  # fmt: skip
    flt = f"HeaderReference eq '{pending['HeaderReference']}'"
    for entity_set in ("VendorInvoiceHeaders", "VendorInvoiceLines"):  # gone from the pending entities
        assert client.get(f"/data/{entity_set}", params={"$filter": flt}).json()["value"] == []
    posted = client.get(
        "/data/VendInvoiceJourBiEntities", params={"$filter": f"SourceKey eq {key['SourceKey']}"}
    ).json(parse_float=Decimal)["value"]
    assert len(posted) == 1
    header = posted[0]
    assert (header["InvoiceId"], header["InvoiceAccount"], header["OrderAccount"], header["PurchId"]) == (
        pending["InvoiceNumber"], pending["InvoiceAccount"], pending["VendorAccount"], pending["PurchaseOrderNumber"],
    )  # fmt: skip
    assert header["SysModifiedDateTime"] == header["CreatedOn"] == "2026-06-16T09:30:00Z"
    assert header["InvoiceDate"] == pending["InvoiceDate"] and header["CurrencyCode"] == pending["Currency"]
    new_lines = sandbox.tenant.select("VendInvoiceTransBiEntities", InternalInvoiceId=header["InternalInvoiceId"])
    assert sorted(r["SourceKey"] for r in new_lines) == list(
        range(max(r["SourceKey"] for r in lines_before) + 1, max(r["SourceKey"] for r in lines_before) + 1 + len(lines))
    )
    assert [(r["ItemId"], r["LineAmount"], r["PurchID"], r["InvoiceDate"]) for r in new_lines] == [
        (line["ItemNumber"], line["Amount"], line["PurchaseOrder"], header["InvoiceDate"]) for line in lines
    ]
    assert header["InvoiceAmount"] == sum(r["LineAmount"] for r in new_lines) + header["SumTax"]
    assert header["SumTax"] == sum(r["TaxAmount"] for r in new_lines) > 0
    assert header["InternalInvoiceId"] not in {h["InternalInvoiceId"] for h in headers_before}
    with pytest.raises(KeyError, match="no pending invoice"):  # posted once only
        sandbox.changes.post_invoice("usmf", pending["HeaderReference"])


def test_posting_an_undated_invoice_dates_it_the_posting_day(sandbox: Sandbox) -> None:
    undated = next(h for h in sandbox.tenant.rows("VendorInvoiceHeaders") if h["InvoiceDate"].startswith("1900"))
    key = sandbox.changes.post_invoice(
        undated["dataAreaId"], undated["HeaderReference"], at=dt.datetime(2026, 6, 16, 23, 0, tzinfo=dt.UTC)
    )
    row = sandbox.tenant.select("VendInvoiceJourBiEntities", SourceKey=key["SourceKey"])[0]
    assert row["InvoiceDate"] == "2026-06-16T12:00:00Z" and row["DueDate"] == "2026-06-16T12:00:00Z"


def test_an_update_sets_sys_modified_date_time(sandbox: Sandbox, client: httpx.Client) -> None:
    row = sandbox.tenant.rows("VendInvoiceJourBiEntities", "gbsi")[0]
    key = {"dataAreaId": "gbsi", "SourceKey": row["SourceKey"]}
    sandbox.changes.update("VendInvoiceJourBiEntities", key, {"Description": "re-opened"},
                           at=dt.datetime(2026, 6, 17, 8, 0, tzinfo=dt.UTC))  # fmt: skip
    flt = f"SysModifiedDateTime ge 2026-06-17T00:00:00Z and SourceKey eq {row['SourceKey']}"
    changed = client.get("/data/VendInvoiceJourBiEntities", params={"$filter": flt, "cross-company": "true"}).json()
    assert [(r["Description"], r["SysModifiedDateTime"]) for r in changed["value"]] == [
        ("re-opened", "2026-06-17T08:00:00Z")
    ]
    # entities without the field just change
    sandbox.changes.update("PurchaseOrderHeadersV2", PO_KEY, {"PurchaseOrderStatus": "Received"})
    assert _po(client, "USMF-PO0000003")[0]["PurchaseOrderStatus"] == "Received"


def test_emit_names_posted_invoices_either_way_from_the_cli(
    sandbox: Sandbox, client: httpx.Client, receiver: tuple[str, list], capsys: pytest.CaptureFixture
) -> None:
    url, posts = receiver
    special = next(r for r in sandbox.tenant.rows("VendInvoiceJourBiEntities", "usmf") if r["InvoiceId"] == "OB'22-000")
    base = ["emit", *_admin_args(sandbox), "--url", url, "--receiver-ca", str(sandbox.ca_path)]
    spec = f"usmf:{special['InvoiceAccount']}:{special['InvoiceId']}"
    assert cli_main([*base, "--invoice", spec]) == 0
    assert cli_main([*base, "--invoice", spec, "--invoice-naming", "vendor"]) == 0
    assert (posts[0]["InvoiceAccount"], posts[0]["InvoiceId"]) == ("O'Brien Supplies", "OB'22-000")
    assert (posts[1]["VendorAccount"], posts[1]["InvoiceNumber"]) == ("O'Brien Supplies", "OB'22-000")
    admin = {"X-Sandbox-Admin-Token": sandbox.admin_token}
    unknown = client.post("/_sandbox/post_invoice", headers=admin, json={"company": "usmf", "header_reference": "NOPE"})
    assert unknown.status_code == 400 and "no pending invoice" in unknown.json()["error"]
