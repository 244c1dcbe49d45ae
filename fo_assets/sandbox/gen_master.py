"""Master data generators: vendors, customers, products, released products, main accounts."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import dimensions
from .config import SandboxConfig
from .gen_common import (
    Columns,
    amounts,
    fill_extra,
    ids,
    locale,
    obj,
    pick,
    rng_for,
    sometimes_empty_date,
    with_empty,
)
from .schema import FieldDef
from .values import EMPTY_DATE, day_seconds

_FIRST = (
    "Contoso",
    "Fabrikam",
    "Litware",
    "Northwind",
    "Adventure",
    "Tailspin",
    "Wingtip",
    "Proseware",
    "Alpine",
    "Coho",
    "Fourth Coffee",
    "Lamna",
    "Trey",
    "Woodgrove",
)
_SECOND = (
    "Supplies",
    "Industries",
    "Logistics",
    "Electronics",
    "Traders",
    "Manufacturing",
    "Services",
    "Components",
    "Retail",
    "Foods",
)
_FORM = (" Ltd.", " Inc.", " GmbH", " LLC", "", " & Sons")
_CITIES = {
    "USA": ("Seattle", "Chicago", "Dallas", "Boston"),
    "DEU": ("Berlin", "Hamburg", "München"),
    "GBR": ("London", "Leeds", "Bristol"),
}
# Keys that break naive URL building: a leading space and an apostrophe (both seen in real tenants).
SPECIAL_VENDORS = ((" RFI-TEST-001", "RFI test vendor"), ("O'Brien Supplies", "O'Brien Supplies Ltd."))


def _names(rng: np.random.Generator, n: int) -> np.ndarray:
    a, b, c = pick(rng, _FIRST, n), pick(rng, _SECOND, n), pick(rng, _FORM, n)
    return obj([f"{x} {y}{z}" for x, y, z in zip(a, b, c)])


def _party(rng: np.random.Generator, cfg: SandboxConfig, company: str, n: int, extra: tuple[FieldDef, ...]) -> Columns:
    """Columns vendors and customers share (names, groups, money, address), by field role."""
    country, currency = locale(company)
    cols: Columns = {
        "name": _names(rng, n),
        "party": pick(rng, ("Organization", "Person"), n, (0.9, 0.1)),
        "group": pick(rng, ("10", "20", "30", "Freight", "Intercomp"), n),
        "currency": obj([currency] * n),
        "hold": pick(rng, ("No", "Invoice", "All", "Payment", "Never"), n, (0.85, 0.05, 0.05, 0.03, 0.02)),
        "credit": np.where(rng.random(n) < 0.2, 0, amounts(rng, n, 1_000, 500_000)).astype(np.int64),
        "terms": pick(rng, ("Net10", "Net30", "Net45", "COD", ""), n),
        "country": obj([country] * n),
        "city": pick(rng, _CITIES.get(country, _CITIES["USA"]), n),
        "dims": dimensions.default_values(rng, n, cfg.dimension_delimiter),
        "flag": pick(rng, ("No", "Yes"), n, (0.9, 0.1)),
    }
    # One credit limit whose float round trip is wrong: it tests that amounts land as decimals.
    cols["credit"][n // 2] = 1234567890123_456789
    cols.update(fill_extra(rng, extra, n))
    return cols


@lru_cache(maxsize=64)
def vendor_master(cfg: SandboxConfig, company: str) -> tuple[tuple[str, str], ...]:
    """(account, name) of every generated vendor of a company; documents reference these."""
    n = max(1, round(50 * cfg.scale))
    names = _names(rng_for(cfg, "VendorNames", company), n)
    accounts = ids(f"{company.upper()}-V{{:05d}}", n)
    return tuple(zip(accounts.tolist(), names.tolist())) + SPECIAL_VENDORS


def vendors(cfg: SandboxConfig, company: str, extra: tuple[FieldDef, ...]) -> Columns:
    master = vendor_master(cfg, company)
    n = len(master)
    rng = rng_for(cfg, "VendorsV2", company)
    p = _party(rng, cfg, company, n, extra)
    accounts = obj([a for a, _ in master])
    return {
        "dataAreaId": obj([company] * n),
        "VendorAccountNumber": accounts,
        "VendorOrganizationName": obj([name for _, name in master]),
        "VendorPartyType": p["party"],
        "VendorGroupId": p["group"],
        "CurrencyCode": p["currency"],
        "OnHoldStatus": p["hold"],
        "CreditLimit": p["credit"],
        "DefaultLedgerDimensionDisplayValue": p["dims"],
        "PaymentTermsName": p["terms"],
        "AddressCountryRegionId": p["country"],
        "AddressCity": p["city"],
        "PrimaryEmailAddress": with_empty(rng, obj([f"ap{i}@vendor.example" for i in range(n)]), 0.2),
        "TaxExemptNumber": with_empty(rng, ids("TX{:07d}", n), 0.3, 0.3),
        "IsOneTimeVendor": p["flag"],
        **{f.name: p[f.name] for f in extra},
    }


def customers(cfg: SandboxConfig, company: str, extra: tuple[FieldDef, ...]) -> Columns:
    n = max(1, round(40 * cfg.scale))
    rng = rng_for(cfg, "CustomersV3", company)
    p = _party(rng, cfg, company, n, extra)
    return {
        "dataAreaId": obj([company] * n),
        "CustomerAccount": ids(f"{company.upper()}-C{{:05d}}", n),
        "OrganizationName": p["name"],
        "PartyType": p["party"],
        "CustomerGroupId": p["group"],
        "SalesCurrencyCode": p["currency"],
        "CreditLimit": p["credit"],
        "PaymentTerms": p["terms"],
        "OnHoldStatus": p["hold"],
        "AddressCountryRegionId": p["country"],
        "AddressCity": p["city"],
        "PrimaryContactEmail": with_empty(rng, obj([f"contact{i}@customer.example" for i in range(n)]), 0.15, 0.05),
        "PrimaryContactPhone": with_empty(rng, obj([f"+1 555 {i:04d}" for i in range(n)]), 0.2),
        "DefaultDimensionDisplayValue": p["dims"],
        "CreditLimitIsMandatory": p["flag"],
        **{f.name: p[f.name] for f in extra},
    }


@lru_cache(maxsize=8)
def product_numbers(cfg: SandboxConfig) -> tuple[str, ...]:
    return tuple(ids("P{:06d}", max(1, round(200 * cfg.scale))).tolist())


def products(cfg: SandboxConfig) -> Columns:
    numbers = obj(product_numbers(cfg))
    n = len(numbers)
    rng = rng_for(cfg, "ProductsV2")
    names = obj(
        [
            f"{a} {b}"
            for a, b in zip(
                pick(rng, ("Standard", "Premium", "Compact", "Heavy-duty", "Eco"), n),
                pick(rng, ("Speaker", "Cable", "Bolt", "Panel", "Sensor", "Pump"), n),
            )
        ]
    )
    return {
        "ProductNumber": numbers,
        "ProductName": names,
        "ProductSearchName": obj([s.upper()[:20] for s in names]),
        "ProductType": pick(rng, ("Item", "Service"), n, (0.85, 0.15)),
        "ProductSubtype": pick(rng, ("Product", "ProductMaster"), n, (0.9, 0.1)),
        "ProductDescription": with_empty(rng, obj([f"{s}, catalogue item" for s in names]), 0.2, 0.2),
        "ProductDimensionGroupName": with_empty(rng, pick(rng, ("Col", "Size", "CS"), n), 0.7),
        "StorageDimensionGroupName": pick(rng, ("SiteWH", "SWL", ""), n),
    }


@lru_cache(maxsize=64)
def released_items(cfg: SandboxConfig, company: str) -> tuple[str, ...]:
    numbers = np.array(product_numbers(cfg), dtype=object)
    keep = rng_for(cfg, "Released", company).random(len(numbers)) < 0.8
    keep[0] = True
    return tuple(numbers[keep].tolist())


def released_products(cfg: SandboxConfig, company: str) -> Columns:
    items = obj(released_items(cfg, company))
    n = len(items)
    rng = rng_for(cfg, "ReleasedProductsV2", company)
    unit = pick(rng, ("ea", "pcs", "kg", "box"), n)
    return {
        "dataAreaId": obj([company] * n),
        "ItemNumber": items,
        "ProductNumber": items.copy(),
        "SearchName": obj([i.lower() for i in items]),
        "ItemModelGroupId": pick(rng, ("FIFO", "STD", "AVG"), n),
        "ProductGroupId": pick(rng, ("Audio", "Parts", "Services", "Tools"), n),
        "PurchaseUnitSymbol": unit,
        "InventoryUnitSymbol": unit.copy(),
        "PurchasePrice": amounts(rng, n, 1, 2_000),
        "SalesPrice": amounts(rng, n, 2, 4_000),
        "IsPurchasePriceAutomaticallyUpdated": pick(rng, ("No", "Yes"), n),
        "ProductType": pick(rng, ("Item", "Service"), n, (0.85, 0.15)),
    }


_ACCOUNT_KINDS = {  # leading digit -> (MainAccountType, category, name)
    "1": ("Asset", "CASH", "Assets"),
    "2": ("Liability", "AP", "Liabilities"),
    "3": ("Equity", "EQ", "Equity"),
    "4": ("Revenue", "REV", "Revenue"),
    "5": ("Expense", "COGS", "Cost of goods"),
    "6": ("Expense", "EXP", "Expenses"),
}


@lru_cache(maxsize=8)
def main_account_ids(cfg: SandboxConfig) -> tuple[str, ...]:
    rng = rng_for(cfg, "MainAccountIds")
    fixed = {"110110", "130100", "200100", "401100", "605140"}
    drawn = {str(d * 100_000 + int(k) * 10) for d in range(1, 7) for k in rng.choice(9_999, 16, replace=False)}
    return tuple(sorted(fixed | drawn))


def main_accounts(cfg: SandboxConfig) -> Columns:
    shared = list(main_account_ids(cfg))
    general = shared[:5]  # a second chart whose name has a space: keys with spaces occur in real data
    account_ids = obj(shared + general)
    n = len(account_ids)
    rng = rng_for(cfg, "MainAccounts")
    kinds = [_ACCOUNT_KINDS[a[0]] for a in account_ids]
    active_from = sometimes_empty_date(
        rng, np.full(n, day_seconds(cfg.anchor.replace(month=1, day=1)), dtype=np.int64), 0.8
    )
    return {
        "ChartOfAccounts": obj(["Shared"] * len(shared) + ["General Chart"] * len(general)),
        "MainAccountId": account_ids,
        "Name": obj([f"{k[2]} {a}" for k, a in zip(kinds, account_ids)]),
        "MainAccountType": obj([k[0] for k in kinds]),
        "MainAccountCategory": with_empty(rng, obj([k[1] for k in kinds]), 0.2),
        "PostingType": pick(rng, ("None", "LedgerJournal", "VendBalance", "Tax"), n, (0.7, 0.1, 0.1, 0.1)),
        "IsSuspended": pick(rng, ("No", "Yes"), n, (0.95, 0.05)),
        "ActiveFrom": active_from,
        "ActiveTo": np.full(n, EMPTY_DATE, dtype=np.int64),
        "MainAccountRecId": np.arange(22_565_420_000, 22_565_420_000 + n, dtype=np.int64),
    }
