"""Change simulation: update, insert and delete records, and post pending vendor invoices, so the next
OData read sees the change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Literal

from .gen_common import locale
from .tenant import Tenant
from .values import EMPTY_DATE, format_time

Op = Literal["update", "insert", "delete", "post"]
MODIFIED = "SysModifiedDateTime"
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Change:
    op: Op
    entity_set: str
    key: dict[str, Any]  # for "post": the key of the posted invoice in VendInvoiceJourBiEntities
    at: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class Changes:
    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.log: list[Change] = []  # every change so far, oldest first (events are emitted from it)

    def _company(self, entity_set: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` with the company field filled (default company) in the case the entity stores it."""
        field = self.tenant.schema(entity_set).company_field
        out = dict(values)
        if field:
            out[field] = self.tenant.company_value(entity_set, str(out.get(field, self.tenant.cfg.default_company)))
        return out

    def update(
        self, entity_set: str, key: Mapping[str, Any], values: Mapping[str, Any], *, at: dt.datetime | None = None
    ) -> dict[str, Any]:
        """Change fields of one row; an entity with SysModifiedDateTime gets it set to the change time."""
        full, at = self._company(entity_set, key), at or _now()
        values = dict(values)
        if MODIFIED in self.tenant.schema(entity_set).by_name:
            values.setdefault(MODIFIED, at)
        with self.tenant.lock:
            self.tenant.table(entity_set).update(full, values)
            self.tenant.touch(entity_set)
        self.log.append(Change("update", entity_set, full, at))
        return full

    def insert(self, entity_set: str, values: Mapping[str, Any], *, at: dt.datetime | None = None) -> dict[str, Any]:
        row = self._company(entity_set, values)
        with self.tenant.lock:
            table = self.tenant.table(entity_set)
            table.insert(row)
            self.tenant.touch(entity_set)
        full = {k: row[k] for k in table.schema.keys}
        self.log.append(Change("insert", entity_set, full, at or _now()))
        return full

    def delete(self, entity_set: str, key: Mapping[str, Any], *, at: dt.datetime | None = None) -> dict[str, Any]:
        full = self._company(entity_set, key)
        with self.tenant.lock:
            self.tenant.table(entity_set).delete(full)
            self.tenant.touch(entity_set)
        self.log.append(Change("delete", entity_set, full, at or _now()))
        return full

    def post_invoice(self, company: str, header_reference: str, *, at: dt.datetime | None = None) -> dict[str, Any]:
        """Post a pending invoice as F&O does: it leaves VendorInvoiceHeaders/Lines and appears in
        VendInvoiceJourBiEntities/VendInvoiceTransBiEntities (see ``_posted``). Returns the posted key."""
        company, at = company.lower(), at or _now()
        tenant = self.tenant
        with tenant.lock:
            header = _single(tenant.select("VendorInvoiceHeaders", company, HeaderReference=header_reference))
            lines = tenant.select("VendorInvoiceLines", company, HeaderReference=header_reference)
            journal, trans = tenant.table("VendInvoiceJourBiEntities"), tenant.table("VendInvoiceTransBiEntities")
            stored = tenant.company_value(journal.schema.entity_set, company)
            number = int((journal.columns["dataAreaId"] == stored).sum()) + 1
            posted_header, posted_lines = _posted(header, lines, company=company, stored=stored, number=number, at=at)
            source_key = int(journal.columns["SourceKey"].max()) + 1
            first_line_key = int(trans.columns["SourceKey"].max()) + 1
            journal.insert({**posted_header, "SourceKey": source_key})
            trans.insert(*({**line, "SourceKey": first_line_key + i} for i, line in enumerate(posted_lines)))
            pending_headers, pending_lines = tenant.table("VendorInvoiceHeaders"), tenant.table("VendorInvoiceLines")
            for line in lines:
                pending_lines.delete({k: line[k] for k in pending_lines.schema.keys})
            pending_headers.delete({k: header[k] for k in pending_headers.schema.keys})
            for table in (pending_headers, pending_lines, journal, trans):
                tenant.touch(table.schema.entity_set)
        key = {"dataAreaId": stored, "SourceKey": source_key}
        self.log.append(Change("post", journal.schema.entity_set, key, at))
        return key

    def apply(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The admin endpoint's form: {"op": "update", "entity_set": ..., "key": {...}, "values": {...}}."""
        op = payload.get("op")
        entity_set = payload.get("entity_set", "")
        if entity_set not in self.tenant.schemas:
            raise KeyError(f"unknown entity set {entity_set!r}")
        if op == "update":
            return self.update(entity_set, payload["key"], payload.get("values", {}))
        if op == "insert":
            return self.insert(entity_set, payload["values"])
        if op == "delete":
            return self.delete(entity_set, payload["key"])
        raise ValueError(f"op must be update, insert or delete, got {op!r}")


def _single(rows: list[dict[str, Any]]) -> dict[str, Any]:
    if len(rows) != 1:
        raise KeyError(f"no pending invoice with that company and HeaderReference (found {len(rows)})")
    return rows[0]


def _posted(
    header: dict[str, Any], lines: list[dict[str, Any]], *, company: str, stored: str, number: int, at: dt.datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The posted header and lines of a pending invoice (without SourceKeys): InvoiceId = the invoice
    number, a new internal invoice id and voucher, tax at the company's rate, SysModifiedDateTime and
    CreatedOn = the posting time; a pending invoice without a date is dated the posting day."""
    undated = format_time(EMPTY_DATE)
    invoice_date = header["InvoiceDate"] if header["InvoiceDate"] != undated else at.date()
    amounts = [Decimal(str(line["Amount"])) for line in lines]
    tax_percent = Decimal(locale(company)[2])
    taxes = [(a * tax_percent / 100).quantize(_CENT, rounding=ROUND_FLOOR) for a in amounts]
    common = {
        "dataAreaId": stored,
        "SysDataAreaId": stored,
        "InvoiceId": header["InvoiceNumber"],
        "InternalInvoiceId": f"{company.upper()}-APINV{number:07d}",
        "numberSequenceGroup": "",
        "InvoiceDate": invoice_date,
        "SysModifiedDateTime": at,
        "CreatedOn": at,
    }
    posted_header = {
        **common,
        "InvoiceAccount": header["InvoiceAccount"],
        "OrderAccount": header["VendorAccount"],
        "PurchId": header["PurchaseOrderNumber"] or "",
        "PurchaseType": "Purch" if header["PurchaseOrderNumber"] else "Journal",
        "DueDate": header["DueDate"] if header["DueDate"] != undated else invoice_date,
        "DocumentDate": invoice_date,  # F&O defaults the document date to the invoice date
        "LedgerVoucher": f"{company.upper()}-APV{number:07d}",
        "InvoiceAmount": sum(amounts) + sum(taxes),
        "InvoiceAmountMST": sum(amounts) + sum(taxes),
        "SumTax": sum(taxes),
        "CurrencyCode": header["Currency"],
        "ExchRate": 100,
        "Qty": sum(Decimal(str(line["ReceiveNow"])) for line in lines),
    }
    posted_lines = [
        {
            **common,
            "PurchID": line["PurchaseOrder"] or "",
            "LineNum": line["InvoiceLineNumber"],
            "PurchaseLineLineNumber": line["PurchLineNumber"],
            "ItemId": line["ItemNumber"],
            "Name": line["LineDescription"],
            "Qty": line["ReceiveNow"],
            "InventQty": line["ReceiveNow"],
            "PurchPrice": line["UnitPrice"],
            "PriceUnit": 1,
            "PurchUnit": line["Unit"],
            "LineAmount": amount,
            "LineAmountMST": amount,
            "TaxAmount": tax,
            "CurrencyCode": line["Currency"],
        }
        for line, amount, tax in zip(lines, amounts, taxes)
    ]
    return posted_header, posted_lines
