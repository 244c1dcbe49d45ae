"""Vendor invoices: pending (VendorInvoiceHeaders/Lines, not yet posted) and posted
(VendInvoiceJourBiEntities/VendInvoiceTransBiEntities).

A pending invoice leaves the pending entities when it is posted (``Changes.post_invoice``). Posted lines
join their header on (dataAreaId, PurchID = PurchId, InvoiceId, InvoiceDate, numberSequenceGroup,
InternalInvoiceId). Invoices made from a purchase order copy its lines. Awkward cases kept on purpose:
vendor accounts and invoice numbers that need quoting in a ``$filter`` (an apostrophe, a leading space,
spaces), pending invoices without an invoice date, and two posted invoices of different vendors that share
an InvoiceId and date (only InternalInvoiceId tells their lines apart).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import dimensions
from .config import SandboxConfig
from .gen_common import (
    Columns,
    amounts,
    concat,
    full,
    ids,
    locale,
    numbers_within,
    obj,
    per_day,
    percent_of,
    pick,
    rng_for,
    sometimes_empty_date,
    spread_days,
    with_empty,
)
from .gen_ledger import FIRST_RECID, main_account_ids
from .gen_parties import SPECIAL_VENDORS, vendor_master
from .gen_purchasing import CATEGORIES, PurchaseOrders, purchase_orders
from .values import EMPTY_DATE, UNITS, day_seconds

PENDING_PER_DAY, POSTED_PER_DAY = 4, 20
# Pending invoices whose natural key needs quoting in a $filter: an apostrophe, spaces and a leading space.
SPECIAL_PENDING = (("O'Brien Supplies", "OB'22-001"), (" RFI-TEST-001", "RFI INV 1"))
SPECIAL_POSTED = (("O'Brien Supplies", "OB'22-000"), (" RFI-TEST-001", "RFI INV 0"))


class InvoiceLines(NamedTuple):
    counts: np.ndarray  # lines per invoice
    cols: Columns  # by role: number, item, name, category, qty, price, amount, unit, po, po_line


def _lines(rng: np.random.Generator, pos: PurchaseOrders, po_index: np.ndarray) -> InvoiceLines:
    """Lines of invoices: a copy of the purchase order's lines, or 1 to 3 lines of a procurement category."""
    is_po = po_index >= 0
    po = np.where(is_po, po_index, 0)
    counts = np.where(is_po, pos.line_count[po], rng.integers(1, 4, len(po_index)))
    number = numbers_within(counts)
    m = int(counts.sum())
    from_po = np.repeat(is_po, counts)
    src = np.where(from_po, np.repeat(pos.line_start[po], counts) + number - 1, 0)
    po_lines = pos.lines
    category = np.where(from_po, po_lines["ProcurementProductCategoryName"][src], pick(rng, CATEGORIES, m))
    qty = np.where(from_po, po_lines["OrderedPurchaseQuantity"][src], amounts(rng, m, 1, 10, 0))
    price = np.where(from_po, po_lines["PurchasePrice"][src], amounts(rng, m, 10, 5_000))
    return InvoiceLines(
        counts,
        {
            "number": number,
            "item": np.where(from_po, po_lines["ItemNumber"][src], "").astype(object),
            "name": np.where(from_po, po_lines["LineDescription"][src], category).astype(object),
            "category": category.astype(object),
            "qty": qty,
            "price": price,
            "amount": qty * price // UNITS,
            "unit": np.where(from_po, po_lines["PurchaseUnitSymbol"][src], "ea").astype(object),
            "po": np.where(from_po, po_lines["PurchaseOrderNumber"][src], "").astype(object),
            "po_line": np.where(from_po, po_lines["LineNumber"][src], 0).astype(np.int64),
        },
    )


def _positions(accounts: list[str]) -> dict[str, int]:
    return {a: i for i, a in enumerate(accounts)}


def pending_invoices(cfg: SandboxConfig, company: str) -> tuple[Columns, Columns]:
    rng = rng_for(cfg, "PendingVendorInvoices", company)
    pos = purchase_orders(cfg, company)
    vendors = vendor_master(cfg, company)
    accounts = [p.account for p in vendors]
    n_plain = per_day(cfg, PENDING_PER_DAY)
    n = n_plain + len(SPECIAL_PENDING)
    open_orders = np.flatnonzero(np.isin(pos.headers["PurchaseOrderStatus"], ("Received", "Backorder")))
    po_index = np.where(rng.random(n) < 0.6, open_orders[rng.integers(0, len(open_orders), n)], -1)
    po_index[n_plain:] = -1
    regular = len(vendors) - len(SPECIAL_VENDORS)
    vendor = rng.integers(0, regular, n)
    po_vendor = pos.headers["OrderVendorAccountNumber"][np.where(po_index >= 0, po_index, 0)]
    position = _positions(accounts)
    vendor = np.where(po_index >= 0, [position[a] for a in po_vendor], vendor)
    vendor[n_plain:] = [position[a] for a, _ in SPECIAL_PENDING]
    invoice_account = np.where(rng.random(n) < 0.9, vendor, rng.integers(0, regular, n))
    invoice_date = sometimes_empty_date(rng, spread_days(cfg, n), 0.15)
    invoice_date[0] = EMPTY_DATE  # at least one not dated yet
    invoice_date[n_plain:] = day_seconds(cfg.anchor)
    dated = invoice_date != EMPTY_DATE
    currency = locale(company)[1]
    refs = ids(f"{company.upper()}-VIH{{:07d}}", n)
    names = obj([p.name for p in vendors])
    headers = {
        "dataAreaId": full(company, n),
        "HeaderReference": refs,
        "InvoiceNumber": np.concatenate([ids("VI-{:07d}", n_plain), obj([i for _, i in SPECIAL_PENDING])]),
        "VendorAccount": obj(accounts)[vendor],
        "InvoiceAccount": obj(accounts)[invoice_account],
        "VendorName": names[vendor],
        "InvoiceDate": invoice_date,
        "DueDate": np.where(dated, invoice_date + 30 * 86_400, EMPTY_DATE).astype(np.int64),
        "InvoiceReceivedDate": sometimes_empty_date(rng, np.where(dated, invoice_date + 86_400, EMPTY_DATE), 0.3),
        "Currency": full(currency, n),
        "TermsOfPayment": pick(rng, ("Net10", "Net30", "Net45"), n),
        "InvoiceDescription": with_empty(rng, pick(rng, CATEGORIES, n), 0.3, 0.05),
        "PurchaseOrderNumber": np.where(
            po_index >= 0, pos.headers["PurchaseOrderNumber"][np.where(po_index >= 0, po_index, 0)], ""
        ).astype(object),
        "IsOnHold": pick(rng, ("No", "Yes"), n, (0.95, 0.05)),
        "VendorInvoiceReviewStatus": pick(rng, ("Draft", "InReview", "Approved"), n),
    }
    ln = _lines(rng, pos, po_index)
    m = len(ln.cols["number"])
    dims = dimensions.default_values(rng, m, cfg.dimension_delimiter)
    lines = {
        "dataAreaId": full(company, m),
        "HeaderReference": np.repeat(refs, ln.counts),
        "InvoiceLineNumber": ln.cols["number"] * UNITS,
        "LineNumber": ln.cols["number"] * UNITS,
        "ItemNumber": ln.cols["item"],
        "ItemName": ln.cols["name"].copy(),
        "ProcurementCategoryName": ln.cols["category"],
        "LineDescription": with_empty(rng, ln.cols["name"], 0.1, 0.05),
        "ReceiveNow": ln.cols["qty"],
        "UnitPrice": ln.cols["price"],
        "Amount": ln.cols["amount"],
        "NetAmount": ln.cols["amount"].copy(),
        "Unit": ln.cols["unit"],
        "Currency": full(currency, m),
        "PurchaseOrder": ln.cols["po"],
        "PurchLineNumber": ln.cols["po_line"],
        "VendorAccount": np.repeat(headers["VendorAccount"], ln.counts),
        "InvoiceAccount": np.repeat(headers["InvoiceAccount"], ln.counts),
        "DimensionDisplayValue": dims,
        "DataAreaCompany": full(company, m),
    }
    return headers, lines


def _posted_company(
    cfg: SandboxConfig, company: str, combos: dimensions.LedgerCombinations
) -> tuple[Columns, Columns, np.ndarray]:
    """Headers, lines and lines per header of one company's posted invoices."""
    rng = rng_for(cfg, "PostedVendorInvoices", company)
    pos = purchase_orders(cfg, company)
    vendors = vendor_master(cfg, company)
    accounts = [p.account for p in vendors]
    regular = len(vendors) - len(SPECIAL_VENDORS)
    n_plain = per_day(cfg, POSTED_PER_DAY)
    n = n_plain + len(SPECIAL_POSTED)
    invoice_date = spread_days(cfg, n)
    # A purchase order already invoiced and dated on or before the invoice, for most invoices.
    invoiced = np.flatnonzero(pos.headers["PurchaseOrderStatus"] == "Invoiced")
    invoiced = invoiced[np.argsort(pos.headers["AccountingDate"][invoiced], kind="stable")]
    before = np.searchsorted(pos.headers["AccountingDate"][invoiced], invoice_date, side="right")
    pick_one = np.clip((rng.random(n) * before).astype(np.int64), 0, max(len(invoiced) - 1, 0))
    candidate = np.where(before > 0, invoiced[pick_one] if len(invoiced) else -1, -1)
    po_index = np.where((rng.random(n) < 0.8) & (before > 0), candidate, -1)
    po_index[:2] = -1  # the two that share an InvoiceId
    po_index[n_plain:] = -1
    vendor = rng.integers(0, regular, n)
    po_vendor = pos.headers["OrderVendorAccountNumber"][np.where(po_index >= 0, po_index, 0)]
    position = _positions(accounts)
    vendor = np.where(po_index >= 0, [position[a] for a in po_vendor], vendor)
    if regular > 1 and vendor[0] == vendor[1]:
        vendor[1] = (vendor[0] + 1) % regular
    vendor[n_plain:] = [position[a] for a, _ in SPECIAL_POSTED]
    invoice_id = np.concatenate([ids("INV-{:07d}", n_plain), obj([i for _, i in SPECIAL_POSTED])])
    invoice_id[1] = invoice_id[0]
    invoice_date[1] = invoice_date[0]
    currency, tax_percent = locale(company)[1], locale(company)[2]
    end_of_anchor = day_seconds(cfg.anchor) + 43_199
    created = np.minimum(
        invoice_date - 43_200 + rng.integers(0, 3, n) * 86_400 + rng.integers(6 * 3_600, 20 * 3_600, n),
        end_of_anchor,
    )
    later = np.minimum(created + rng.integers(1, 6, n) * 86_400, end_of_anchor)
    modified = np.where(rng.random(n) < 0.1, later, created)
    internal = ids(f"{company.upper()}-APINV{{:07d}}", n)
    purch_id = np.where(
        po_index >= 0, pos.headers["PurchaseOrderNumber"][np.where(po_index >= 0, po_index, 0)], ""
    ).astype(object)
    ln = _lines(rng, pos, po_index)
    m = len(ln.cols["number"])
    tax = percent_of(ln.cols["amount"], tax_percent)
    starts = np.cumsum(ln.counts) - ln.counts
    line_total, tax_total = np.add.reduceat(ln.cols["amount"], starts), np.add.reduceat(tax, starts)
    headers = {
        "dataAreaId": full(company, n),
        "SysDataAreaId": full(company, n),
        "InvoiceId": invoice_id,
        "InternalInvoiceId": internal,
        "numberSequenceGroup": full("", n),
        "InvoiceAccount": obj(accounts)[vendor],
        "OrderAccount": obj(accounts)[vendor],
        "PurchId": purch_id,
        "PurchaseType": np.where(po_index >= 0, "Purch", "Journal").astype(object),
        "InvoiceDate": invoice_date,
        "DueDate": invoice_date + 30 * 86_400,
        "DocumentDate": sometimes_empty_date(rng, invoice_date - rng.integers(0, 6, n) * 86_400, 0.2),
        "LedgerVoucher": ids(f"{company.upper()}-APV{{:07d}}", n),
        "InvoiceAmount": line_total + tax_total,
        "InvoiceAmountMST": line_total + tax_total,
        "SumTax": tax_total,
        "CurrencyCode": full(currency, n),
        "ExchRate": np.full(n, 100 * UNITS, dtype=np.int64),
        "Qty": np.add.reduceat(ln.cols["qty"], starts),
        "SysModifiedDateTime": modified,
        "CreatedOn": created,
    }
    combo = combos.pick(rng, m)
    lines = {
        "dataAreaId": full(company, m),
        "SysDataAreaId": full(company, m),
        "InvoiceId": np.repeat(invoice_id, ln.counts),
        "InternalInvoiceId": np.repeat(internal, ln.counts),
        "numberSequenceGroup": full("", m),
        "InvoiceDate": np.repeat(invoice_date, ln.counts),
        "PurchID": np.repeat(purch_id, ln.counts),
        "LineNum": ln.cols["number"] * UNITS,
        "PurchaseLineLineNumber": ln.cols["po_line"],
        "ItemId": ln.cols["item"],
        "Name": ln.cols["name"],
        "Qty": ln.cols["qty"],
        "InventQty": ln.cols["qty"].copy(),
        "PurchPrice": ln.cols["price"],
        "PriceUnit": np.full(m, UNITS, dtype=np.int64),
        "PurchUnit": ln.cols["unit"],
        "LineAmount": ln.cols["amount"],
        "LineAmountMST": ln.cols["amount"].copy(),
        "TaxAmount": tax,
        "CurrencyCode": full(currency, m),
        "LedgerDimensionValuesJson": combos.json[combo],
        "SysModifiedDateTime": np.repeat(modified, ln.counts),
        "CreatedOn": np.repeat(created, ln.counts),
    }
    return headers, lines, ln.counts


def posted_invoices(cfg: SandboxConfig) -> tuple[Columns, Columns]:
    """Posted invoices of every company; SourceKeys (per table) in order of posting across companies."""
    combos = dimensions.LedgerCombinations(
        rng_for(cfg, "InvoiceCombinations"), list(main_account_ids(cfg)), cfg.dimension_delimiter
    )
    parts = [_posted_company(cfg, c, combos) for c in cfg.companies]
    headers, lines = concat([h for h, _, _ in parts]), concat([ln for _, ln, _ in parts])
    header_of_line = np.repeat(np.arange(len(headers["InvoiceId"])), np.concatenate([c for _, _, c in parts]))
    order = np.lexsort((np.arange(len(headers["CreatedOn"])), headers["CreatedOn"]))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    headers["SourceKey"] = FIRST_RECID + rank
    line_order = np.lexsort((np.arange(len(header_of_line)), rank[header_of_line]))
    lines["SourceKey"] = np.empty(len(line_order), dtype=np.int64)
    lines["SourceKey"][line_order] = FIRST_RECID + np.arange(len(line_order))
    return headers, lines
