"""Document generators: purchase orders, vendor invoices (headers with their lines) and GL entries.

Dated records spread over the ``days`` days ending at the anchor date; every reference points at a
generated record (vendors, released items, PO numbers, main accounts).
"""

from __future__ import annotations

import numpy as np

from . import dimensions
from .config import SandboxConfig
from .gen_common import (
    REPORTING_RATE,
    SCALE6,
    Columns,
    amounts,
    ids,
    locale,
    obj,
    per_row_counts,
    pick,
    recent_days,
    rng_for,
    sometimes_empty_date,
    with_empty,
)
from .gen_master import main_account_ids, released_items, vendor_master
from .values import EMPTY_DATE, EMPTY_UTC, day_seconds

PO_PER_DAY, INVOICES_PER_DAY, GL_PER_DAY = 20, 20, 112
_CATEGORIES = ("Office supplies", "IT hardware", "Freight", "Raw materials", "Consulting")


def _daily(cfg: SandboxConfig, per_day: int) -> int:
    return max(1, round(per_day * cfg.scale)) * cfg.days


def po_numbers(cfg: SandboxConfig, company: str) -> np.ndarray:
    return ids(f"{company.upper()}-PO{{:07d}}", _daily(cfg, PO_PER_DAY))


def _lines(
    rng: np.random.Generator, cfg: SandboxConfig, company: str, headers: np.ndarray
) -> tuple[np.ndarray, Columns]:
    """Shared line shape: which header, number within header, item, quantity, price, exact amount."""
    counts, number = per_row_counts(rng, len(headers), 1, 5)
    m = int(counts.sum())
    qty = amounts(rng, m, 1, 100)
    price = amounts(rng, m, 1, 2_000)
    return counts, {
        "header": np.repeat(headers, counts),
        "number": number.astype(np.int64),
        "item": pick(rng, released_items(cfg, company), m),
        "qty": qty,
        "price": price,
        "amount": qty * price // SCALE6,
        "category": pick(rng, _CATEGORIES, m),
        "unit": pick(rng, ("ea", "pcs", "kg"), m),
    }


def purchase_orders(cfg: SandboxConfig, company: str) -> tuple[Columns, Columns]:
    rng = rng_for(cfg, "PurchaseOrders", company)
    numbers = po_numbers(cfg, company)
    n = len(numbers)
    country, currency = locale(company)
    vendor_idx = rng.integers(0, len(vendor_master(cfg, company)), n)
    vendor_accounts = obj([a for a, _ in vendor_master(cfg, company)])[vendor_idx]
    vendor_names = obj([name for _, name in vendor_master(cfg, company)])[vendor_idx]
    accounting = recent_days(cfg, rng, n)
    requested = accounting + rng.integers(0, 31, n) * 86_400
    approval = pick(rng, ("Confirmed", "Approved", "Draft", "InReview"), n, (0.6, 0.2, 0.1, 0.1))
    status = pick(rng, ("Backorder", "Received", "Invoiced", "Canceled", "None"), n, (0.4, 0.3, 0.2, 0.05, 0.05))
    confirmed = approval == "Confirmed"
    headers = {
        "dataAreaId": obj([company] * n),
        "PurchaseOrderNumber": numbers,
        "OrderVendorAccountNumber": vendor_accounts,
        "InvoiceVendorAccountNumber": vendor_accounts.copy(),
        "PurchaseOrderName": vendor_names,
        "PurchaseOrderStatus": status,
        "DocumentApprovalStatus": approval,
        "CurrencyCode": obj([currency] * n),
        "AccountingDate": accounting,
        "RequestedDeliveryDate": requested,
        "ConfirmedDeliveryDate": np.where(confirmed, requested, EMPTY_DATE).astype(np.int64),
        "DefaultLedgerDimensionDisplayValue": dimensions.default_values(rng, n, cfg.dimension_delimiter),
        "PaymentTermsName": pick(rng, ("Net10", "Net30", "Net45"), n),
        "DeliveryAddressCountryRegionId": obj([country] * n),
        "VendorOrderReference": with_empty(rng, ids("VOR-{:06d}", n), 0.6, 0.1),
        "TotalDiscountPercentage": np.where(rng.random(n) < 0.8, 0, amounts(rng, n, 0, 15, 1)).astype(np.int64),
        "LastConfirmationDateTime": np.where(
            confirmed, accounting - 43_200 + rng.integers(0, 86_400, n), EMPTY_UTC
        ).astype(np.int64),
    }
    counts, ln = _lines(rng, cfg, company, numbers)
    m = len(ln["header"])
    lines = {
        "dataAreaId": obj([company] * m),
        "PurchaseOrderNumber": ln["header"],
        "LineNumber": ln["number"],
        "ItemNumber": ln["item"],
        "LineDescription": with_empty(rng, obj([f"Item {i}" for i in ln["item"]]), 0.1),
        "OrderedPurchaseQuantity": ln["qty"],
        "PurchasePrice": ln["price"],
        "LineAmount": ln["amount"],
        "PurchaseOrderLineStatus": np.repeat(status, counts),
        "RequestedDeliveryDate": np.repeat(requested, counts),
        "PurchaseUnitSymbol": ln["unit"],
        "ProcurementProductCategoryName": ln["category"],
    }
    return headers, lines


# Invoices whose natural key needs quoting in a $filter: an apostrophe, spaces and a leading space.
SPECIAL_INVOICES = (("O'Brien Supplies", "OB'22-001"), (" RFI-TEST-001", "RFI INV 1"))


def vendor_invoices(cfg: SandboxConfig, company: str) -> tuple[Columns, Columns]:
    rng = rng_for(cfg, "VendorInvoices", company)
    n_plain = _daily(cfg, INVOICES_PER_DAY)
    n = n_plain + len(SPECIAL_INVOICES)
    refs = ids(f"{company.upper()}-VIH{{:07d}}", n)
    regular = [a for a, _ in vendor_master(cfg, company)]
    vendor = np.concatenate([pick(rng, regular, n_plain), obj([v for v, _ in SPECIAL_INVOICES])])
    number = np.concatenate([ids("INV-{:07d}", n_plain), obj([i for _, i in SPECIAL_INVOICES])])
    invoice_date = np.concatenate(
        [recent_days(cfg, rng, n_plain), np.full(len(SPECIAL_INVOICES), day_seconds(cfg.anchor), dtype=np.int64)]
    )
    pos = po_numbers(cfg, company)
    counts, ln = _lines(rng, cfg, company, refs)
    invoice_amount = np.add.reduceat(ln["amount"], np.cumsum(counts) - counts)
    headers = {
        "dataAreaId": obj([company] * n),
        "HeaderReference": refs,
        "InvoiceNumber": number,
        "VendorAccount": vendor,
        "InvoiceAccount": np.where(rng.random(n) < 0.9, vendor, pick(rng, regular, n)),
        "InvoiceDate": invoice_date,
        "DueDate": invoice_date + 30 * 86_400,
        "DocumentDate": sometimes_empty_date(rng, invoice_date - rng.integers(0, 6, n) * 86_400, 0.2),
        "CurrencyCode": obj([locale(company)[1]] * n),
        "InvoiceDescription": with_empty(rng, pick(rng, _CATEGORIES, n), 0.3, 0.05),
        "PurchaseOrderNumber": with_empty(rng, pick(rng, pos, n), 0.4),
        "InvoiceAmount": invoice_amount,
        "PaymentTermsName": pick(rng, ("Net10", "Net30", "Net45"), n),
        "IsOnHold": pick(rng, ("No", "Yes"), n, (0.95, 0.05)),
        "PostedDateTime": np.where(
            rng.random(n) < 0.9, invoice_date - 43_200 + rng.integers(0, 86_400, n), EMPTY_UTC
        ).astype(np.int64),
    }
    m = len(ln["header"])
    lines = {
        "dataAreaId": obj([company] * m),
        "HeaderReference": ln["header"],
        "InvoiceLineNumber": ln["number"] * SCALE6,
        "ItemNumber": ln["item"],
        "ProcurementCategoryName": ln["category"],
        "LineDescription": with_empty(
            rng, obj([f"{c} for {i}" for c, i in zip(ln["category"], ln["item"])]), 0.1, 0.05
        ),
        "Quantity": ln["qty"],
        "UnitPrice": ln["price"],
        "LineAmount": ln["amount"],
        "PurchaseUnitSymbol": ln["unit"],
    }
    return headers, lines


FIRST_GL_RECID = 5_637_144_576
_GL_TEXT = ("Vendor invoice", "Payment", "Accrual", "Depreciation", "Payroll", "Customer invoice", "Revaluation", "")


def gl_count(cfg: SandboxConfig) -> int:
    """Entries per company: an even number, two (debit, credit) per voucher."""
    return _daily(cfg, GL_PER_DAY) // 2 * 2 or 2


def general_journal(cfg: SandboxConfig, company: str, first_recid: int) -> Columns:
    """Balanced two-line vouchers; RecIds are unique across companies, increasing with the date."""
    rng = rng_for(cfg, "GeneralJournal", company)
    n = gl_count(cfg)
    v = n // 2
    currency = locale(company)[1]
    rate_num, rate_den = REPORTING_RATE.get(currency, (1, 1))
    voucher_date = recent_days(cfg, rng, v)
    amount = amounts(rng, v, 1, 100_000)
    # A few postings whose value does not survive a float round trip.
    amount[rng.random(v) < 0.002] = 98_765_432_109_123_457
    signed = np.empty(n, dtype=np.int64)
    signed[0::2], signed[1::2] = amount, -amount
    foreign = np.repeat(rng.random(v) < 0.1, 2)
    ledger = dimensions.ledger_values(rng, list(main_account_ids(cfg)), n, cfg.dimension_delimiter)
    doc_number = with_empty(rng, ids("DOC{:08d}", v), 0.3)
    return {
        "DataArea": obj([company] * n),
        "GeneralJournalAccountEntryRecId": np.arange(first_recid, first_recid + n, dtype=np.int64),
        "JournalNumber": np.repeat(obj([f"{company.upper()}-JN{i // 20:06d}" for i in range(v)]), 2),
        "Voucher": np.repeat(ids("GNJL{:08d}", v), 2),
        "AccountingDate": np.repeat(voucher_date, 2),
        "PostingLayer": np.repeat(pick(rng, ("Current", "Operations", "Tax"), v, (0.95, 0.03, 0.02)), 2),
        "LedgerAccount": ledger,
        "AccountDisplayValue": ledger.copy(),
        "TransactionCurrencyCode": np.where(foreign, "USD" if currency != "USD" else "EUR", currency).astype(object),
        "TransactionCurrencyAmount": np.where(foreign, signed // 10 * 11, signed),
        "AccountingCurrencyAmount": signed,
        "ReportingCurrencyAmount": signed // rate_den * rate_num,
        "Description": np.repeat(pick(rng, _GL_TEXT, v), 2),
        "PostingType": pick(rng, ("LedgerJournal", "VendBalance", "PurchConsump", "Tax", "None"), n),
        "JournalCategory": np.repeat(pick(rng, ("None", "Purch", "Vend", "Cust", "Bank"), v), 2),
        "IsCredit": obj(["No", "Yes"] * v),
        "DocumentDate": np.repeat(sometimes_empty_date(rng, voucher_date, 0.3), 2),
        "DocumentNumber": np.repeat(doc_number, 2),
    }
