"""Purchase orders (PurchaseOrderHeadersV2 with PurchaseOrderLinesV2).

Most orders are dated in the ``days`` window; a tenth more are older orders still open (Backorder or
Received), so a reader that only follows the accounting date misses their later status changes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from . import dimensions
from .config import SandboxConfig
from .gen_common import (
    CITIES,
    Columns,
    amounts,
    full,
    ids,
    locale,
    obj,
    per_day,
    per_row_counts,
    pick,
    rng_for,
    spread_days,
    with_empty,
)
from .gen_parties import vendor_master
from .gen_products import released_items
from .values import EMPTY_DATE, UNITS, day_seconds

PO_PER_DAY = 20
CATEGORIES = ("Office supplies", "IT hardware", "Freight", "Raw materials", "Consulting")
_STATUS = ("Backorder", "Received", "Invoiced", "Canceled", "None")
_APPROVAL = ("Confirmed", "Approved", "Draft", "InReview")


class PurchaseOrders(NamedTuple):
    headers: Columns
    lines: Columns
    line_start: np.ndarray  # per header: position of its first line
    line_count: np.ndarray


def old_open_count(recent: int) -> int:
    return max(2, recent // 10)


@lru_cache(maxsize=16)
def purchase_orders(cfg: SandboxConfig, company: str) -> PurchaseOrders:
    rng = rng_for(cfg, "PurchaseOrders", company)
    recent = per_day(cfg, PO_PER_DAY)
    old = old_open_count(recent)
    n = old + recent
    window_start = day_seconds(cfg.anchor) - (cfg.days - 1) * 86_400
    old_days = np.sort(window_start - rng.integers(45, 180, old) * 86_400)
    accounting = np.concatenate([old_days, spread_days(cfg, recent)])
    status = np.concatenate(
        [pick(rng, ("Backorder", "Received"), old), pick(rng, _STATUS, recent, (0.4, 0.25, 0.25, 0.05, 0.05))]
    )
    approval = pick(rng, _APPROVAL, n, (0.6, 0.2, 0.1, 0.1))
    approval[np.isin(status, ("Backorder", "Received", "Invoiced")) & (rng.random(n) < 0.8)] = "Confirmed"
    approval[np.isin(status, ("Received", "Invoiced"))] = "Confirmed"
    vendors = vendor_master(cfg, company)
    vendor = rng.integers(0, len(vendors), n)
    accounts = obj([p.account for p in vendors])[vendor]
    country, currency, _ = locale(company)
    requested = accounting + rng.integers(3, 31, n) * 86_400
    confirmed = approval == "Confirmed"
    numbers = ids(f"{company.upper()}-PO{{:07d}}", n)
    dims = dimensions.default_values(rng, n, cfg.dimension_delimiter)
    headers = {
        "dataAreaId": full(company, n),
        "PurchaseOrderNumber": numbers,
        "OrderVendorAccountNumber": accounts,
        "InvoiceVendorAccountNumber": accounts.copy(),
        "PurchaseOrderName": obj([p.name for p in vendors])[vendor],
        "PurchaseOrderStatus": status,
        "DocumentApprovalStatus": approval,
        "CurrencyCode": full(currency, n),
        "AccountingDate": accounting,
        "RequestedDeliveryDate": requested,
        "ConfirmedDeliveryDate": np.where(confirmed, requested, EMPTY_DATE).astype(np.int64),
        "DefaultLedgerDimensionDisplayValue": dims,
        "PaymentTermsName": pick(rng, ("Net10", "Net30", "Net45"), n),
        "DeliveryAddressCountryRegionId": full(country, n),
        "DeliveryAddressCity": pick(rng, CITIES.get(country, CITIES["USA"]), n),
        "VendorOrderReference": with_empty(rng, ids("VOR-{:06d}", n), 0.6, 0.1),
        "TotalDiscountPercentage": np.where(rng.random(n) < 0.8, 0, amounts(rng, n, 0, 15, 1)).astype(np.int64),
        "DefaultReceivingSiteId": full("1", n),
        "DefaultReceivingWarehouseId": pick(rng, ("11", "12", "13"), n),
        "PurchaseOrderPoolId": with_empty(rng, pick(rng, ("Local", "Import"), n), 0.5),
    }
    counts, number = per_row_counts(rng, n, 1, 5)
    m = int(counts.sum())
    items = released_items(cfg, company)
    item = rng.integers(0, len(items), m)
    qty = amounts(rng, m, 1, 100, 0)
    price = amounts(rng, m, 1, 2_000)
    lines = {
        "dataAreaId": full(company, m),
        "PurchaseOrderNumber": np.repeat(numbers, counts),
        "LineNumber": number.astype(np.int64),
        "ItemNumber": obj([number for number, _ in items])[item],
        "LineDescription": with_empty(rng, obj([name for _, name in items])[item], 0.1),
        "OrderedPurchaseQuantity": qty,
        "PurchasePrice": price,
        "LineAmount": qty * price // UNITS,
        "PurchaseOrderLineStatus": np.repeat(status, counts),
        "RequestedDeliveryDate": np.repeat(requested, counts),
        "ConfirmedDeliveryDate": np.repeat(headers["ConfirmedDeliveryDate"], counts),
        "PurchaseUnitSymbol": pick(rng, ("ea", "pcs", "kg"), m),
        "ProcurementProductCategoryName": pick(rng, CATEGORIES, m),
        "DefaultLedgerDimensionDisplayValue": np.repeat(dims, counts),
        "DeliveryAddressCountryRegionId": full(country, m),
        "ReceivingSiteId": full("1", m),
        "ReceivingWarehouseId": np.repeat(headers["DefaultReceivingWarehouseId"], counts),
    }
    return PurchaseOrders(headers, lines, np.cumsum(counts) - counts, counts)
