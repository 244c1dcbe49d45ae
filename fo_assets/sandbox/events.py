"""Business Events as F&O sends them to an HTTPS endpoint: built from tenant rows, POSTed as JSON.

Payloads follow the real shape (BusinessEventId, ControlNumber increasing with gaps, upper-case GUID
EventId, ``/Date(ms)/`` EventTime, LegalEntity sometimes upper-case, ...). Delivery can repeat and
reorder events, as F&O's retries and resends do.

No real ``VendorInvoicePostedBusinessEvent`` payload is public. It describes a posted invoice
(VendInvoiceJourBiEntities) and by default names it as Microsoft's documented sibling contract (sales
invoice posted) does: ``InvoiceAccount``, ``InvoiceId``, ``InvoiceDate``, ``InvoiceDueDate``,
``InvoiceAmountInAccountingCurrency``, ``InvoiceTaxAmount`` and the order (``PurchaseOrderId`` for
``SalesOrderId``); ``naming="vendor"`` names it ``VendorAccount``/``InvoiceNumber`` instead.
"""

from __future__ import annotations

import datetime as dt
import random
import ssl
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson

from .changes import Changes
from .config import SandboxConfig
from .tenant import Tenant

PO_CONFIRMED = "PurchaseOrderConfirmedBusinessEvent"
INVOICE_POSTED = "VendorInvoicePostedBusinessEvent"
InvoiceNaming = Literal["invoice", "vendor"]


def _ms_date(iso: str) -> str:
    instant = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return f"/Date({int(instant.timestamp() * 1000)})/"


def _one_row(tenant: Tenant, entity_set: str, company: str, **match: str) -> dict[str, Any]:
    rows = tenant.select(entity_set, company, **match)
    if len(rows) != 1:
        raise KeyError(f"{entity_set}: no single row in {company} with {match} (found {len(rows)})")
    return rows[0]


class Events:
    def __init__(self, cfg: SandboxConfig, tenant: Tenant, changes: Changes) -> None:
        self.cfg, self.tenant, self.changes = cfg, tenant, changes
        self._rng = random.Random(cfg.seed)
        self._control_number = 5_637_144_576
        self._changes_emitted = 0

    def _envelope(self, business_event_id: str, company: str, subject: str) -> dict[str, Any]:
        self._control_number += self._rng.randint(1, 4)  # increasing, with gaps
        now = dt.datetime.now(dt.UTC)
        legal_entity = company.upper() if self._rng.random() < 0.3 else company
        return {
            "BusinessEventId": business_event_id,
            "BusinessEventLegalEntity": legal_entity,
            "ContextRecordSubject": subject,
            "ControlNumber": self._control_number,
            "EventId": str(uuid.UUID(int=self._rng.getrandbits(128), version=4)).upper(),
            "EventTime": f"/Date({int(now.timestamp() * 1000)})/",
            "EventTimeIso8601": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "InitiatingUserAADObjectId": "{00000000-0000-0000-0000-000000000000}",
            "LegalEntity": legal_entity,
            "MajorVersion": 0,
            "MinorVersion": 0,
            "ParentContextRecordSubjects": [],
        }

    def purchase_order_confirmed(self, company: str, po_number: str) -> dict[str, Any]:
        company = company.lower()
        header = _one_row(self.tenant, "PurchaseOrderHeadersV2", company, PurchaseOrderNumber=po_number)
        lines = self.tenant.select("PurchaseOrderLinesV2", company, PurchaseOrderNumber=po_number)
        return {
            **self._envelope(PO_CONFIRMED, company, f"PurchTable: {po_number}"),
            "PurchaseJournal": f"{po_number}-1",
            "PurchaseOrderDate": _ms_date(header["AccountingDate"]),
            "PurchaseOrderNumber": po_number,
            "PurchaseType": "Purch",
            "TransactionCurrencyAmount": sum((Decimal(r["LineAmount"]) for r in lines), Decimal(0)),
            "TransactionCurrencyCode": header["CurrencyCode"],
            "VendorAccount": header["OrderVendorAccountNumber"],
        }

    def vendor_invoice_posted(
        self, company: str, invoice_account: str, invoice_id: str, *, naming: InvoiceNaming = "invoice"
    ) -> dict[str, Any]:
        """The event of a posted invoice, found by its invoice account and InvoiceId."""
        company = company.lower()
        header = _one_row(
            self.tenant, "VendInvoiceJourBiEntities", company, InvoiceAccount=invoice_account, InvoiceId=invoice_id
        )
        event = self._envelope(INVOICE_POSTED, company, f"VendInvoiceJour: {invoice_id}")
        if naming == "vendor":
            return {
                **event,
                "InvoiceAmount": header["InvoiceAmount"],
                "InvoiceDate": _ms_date(header["InvoiceDate"]),
                "InvoiceNumber": invoice_id,
                "TransactionCurrencyCode": header["CurrencyCode"],
                "VendorAccount": header["OrderAccount"],
            }
        if naming != "invoice":
            raise ValueError(f"naming must be 'invoice' or 'vendor', got {naming!r}")
        return {
            **event,
            "InvoiceAccount": invoice_account,
            "InvoiceAmountInAccountingCurrency": header["InvoiceAmountMST"],
            "InvoiceDate": _ms_date(header["InvoiceDate"]),
            "InvoiceDueDate": _ms_date(header["DueDate"]),
            "InvoiceId": invoice_id,
            "InvoiceTaxAmount": header["SumTax"],
            "PurchaseOrderId": header["PurchId"],
        }

    def for_changes(self, *, naming: InvoiceNaming = "invoice") -> list[dict[str, Any]]:
        """Events for the changes since the last call: purchase orders inserted or updated (confirmed), and
        vendor invoices posted."""
        events = []
        for change in self.changes.log[self._changes_emitted :]:
            company = str(change.key.get("dataAreaId", "")).lower()
            if change.entity_set == "PurchaseOrderHeadersV2" and change.op in ("update", "insert"):
                events.append(self.purchase_order_confirmed(company, change.key["PurchaseOrderNumber"]))
            elif change.op == "post":
                row = _one_row(self.tenant, change.entity_set, company, SourceKey=change.key["SourceKey"])
                account, invoice_id = row["InvoiceAccount"], row["InvoiceId"]
                events.append(self.vendor_invoice_posted(company, account, invoice_id, naming=naming))
        self._changes_emitted = len(self.changes.log)
        return events

    def emit(
        self,
        url: str,
        events: list[dict[str, Any]],
        ca_bundle: str | Path | None = None,
        *,
        duplicates: bool = False,
        shuffle: bool = False,
        batch: bool = False,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> list[int]:
        """POST the events to ``url`` (one object per post, or one array with ``batch``); the statuses."""
        sequence = list(events)
        if duplicates:
            sequence += [e for e in events if self._rng.random() < 0.5] or events[:1]
        if shuffle:
            self._rng.shuffle(sequence)
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca_bundle)) if ca_bundle else True
        bodies = [sequence] if batch else sequence
        with httpx.Client(verify=verify, timeout=timeout, trust_env=False) as client:
            return [
                client.post(
                    url,
                    content=orjson.dumps(_numbers(b)),
                    headers={"Content-Type": "application/json", **(headers or {})},
                ).status_code
                for b in bodies
            ]

    def apply(self, payload: dict[str, Any]) -> list[int]:
        """Admin form: {"url", "ca_bundle"?, "changed": true | "events": [{"type", "company", ...}],
        "naming"?: "invoice" | "vendor", "duplicates"?, "shuffle"?, "batch"?}."""
        naming = payload.get("naming", "invoice")
        builders: dict[str, Callable[..., dict[str, Any]]] = {
            "purchase_order_confirmed": self.purchase_order_confirmed,
            "vendor_invoice_posted": lambda **spec: self.vendor_invoice_posted(**spec, naming=naming),
        }
        events = (
            self.for_changes(naming=naming)
            if payload.get("changed")
            else [builders[spec.pop("type")](**spec) for spec in (dict(s) for s in payload.get("events", []))]
        )
        return self.emit(
            payload["url"],
            events,
            payload.get("ca_bundle"),
            duplicates=bool(payload.get("duplicates")),
            shuffle=bool(payload.get("shuffle")),
            batch=bool(payload.get("batch")),
            headers=payload.get("headers"),
        )


def _numbers(value: Any) -> Any:
    """Decimals as exact JSON numbers."""
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f"))
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    return value
