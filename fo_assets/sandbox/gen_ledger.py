"""The general ledger as F&O exposes it: MainAccounts, Ledgers, the fiscal calendar BI entities and the GL
BI entities (GeneralJournalEntryBiEntities = voucher headers, GeneralJournalAccountEntryBiEntities = lines).

Relations follow F&O's table relations, not declared in ``$metadata``: a header's ``Ledger`` is
``Ledgers.LedgerRecId`` (whose ``LegalEntityId`` is the company), a line's ``GeneralJournalEntry`` is its
header's ``SourceKey``, a line's ``MainAccount`` is ``MainAccounts.MainAccountRecId`` of its account in the
"Shared" chart. Lines carry no company and no date. RecIds (``SourceKey``) are per table, as in F&O, and
grow with the accounting date across all companies. Vouchers balance: their lines sum to zero in
accounting, reporting and transaction currency.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np

from .config import SandboxConfig
from .dimensions import LedgerCombinations
from .gen_common import (
    REPORTING_RATE,
    Columns,
    amounts,
    concat,
    full,
    locale,
    obj,
    per_day,
    pick,
    rng_for,
    sometimes_empty_date,
    spread_days,
    with_empty,
)
from .values import EMPTY_DATE, UNITS, day_seconds

GL_LINES_PER_DAY = 112
FIRST_RECID = 5_637_144_576  # where F&O's RecId sequences start
FIRST_MAIN_ACCOUNT_RECID = 22_565_421_000
CHARTS = {"Shared": FIRST_RECID, "General Chart": FIRST_RECID + 1}
FISCAL_CALENDAR_RECID = FIRST_RECID
COMPANY_NAMES = {
    "usmf": "Contoso Entertainment System USA",
    "demf": "Contoso Entertainment System Germany",
    "gbsi": "Contoso Entertainment System UK",
}
LOSSY_AMOUNT = 98_765_432_109_123_457  # 98,765,432,109.123457: wrong after a float round trip

_ACCOUNT_KINDS = {  # leading digit -> (MainAccountType, category, name)
    "1": ("Asset", "CASH", "Assets"),
    "2": ("Liability", "AP", "Liabilities"),
    "3": ("Equity", "EQ", "Equity"),
    "4": ("Revenue", "REV", "Revenue"),
    "5": ("Expense", "COGS", "Cost of goods"),
    "6": ("Expense", "EXP", "Expenses"),
}
# Voucher kinds: JournalCategory, posting type of the lines and of the balancing line, text, voucher prefix.
_VOUCHERS = (
    ("Purch", "PurchConsump", "VendBalance", "Vendor invoice", "APINV"),
    ("Vend", "VendBalance", "Bank", "Vendor payment", "APPAY"),
    ("Sales", "CustBalance", "SalesRevenue", "Customer invoice", "ARINV"),
    ("Cust", "Bank", "CustBalance", "Customer payment", "ARPAY"),
    ("GeneralJournal", "LedgerJournal", "LedgerJournal", "Accrual", "GNJL"),
    ("FixedAssets", "FixedAssetsDebit", "FixedAssetsCredit", "Depreciation", "FADP"),
    ("Payroll", "PayrollDebitAccount", "PayrollCreditAccount", "Payroll", "PAYR"),
    ("Tax", "Tax", "Tax", "", "TAXS"),
)
_VOUCHER_P = (0.3, 0.15, 0.2, 0.1, 0.1, 0.05, 0.05, 0.05)


def company_name(company: str) -> str:
    return COMPANY_NAMES.get(company, f"{company.upper()} legal entity")


def ledger_recid(cfg: SandboxConfig, company: str) -> int:
    return FIRST_RECID + 100 + cfg.companies.index(company)


def fiscal_year_recid(year: int) -> int:
    return FIRST_RECID + 200 + (year - 2000)


def fiscal_period_recid(year: int, month: int) -> int:
    return FIRST_RECID + 1_000 + (year - 2000) * 12 + month - 1


def _years(cfg: SandboxConfig) -> range:
    return range((cfg.anchor - dt.timedelta(days=cfg.days + 400)).year, cfg.anchor.year + 1)


@lru_cache(maxsize=8)
def main_account_ids(cfg: SandboxConfig) -> tuple[str, ...]:
    """The "Shared" chart's accounts (sorted); GL lines and dimension strings use these."""
    rng = rng_for(cfg, "MainAccountIds")
    fixed = {"110110", "130100", "200100", "401100", "605140"}
    drawn = {str(d * 100_000 + int(k) * 10) for d in range(1, 7) for k in rng.choice(9_999, 16, replace=False)}
    return tuple(sorted(fixed | drawn))


def main_accounts(cfg: SandboxConfig) -> Columns:
    shared = list(main_account_ids(cfg))
    general = shared[:5]  # a second chart whose name has a space: keys with spaces occur in real data
    account_ids = obj(shared + general)
    charts = ["Shared"] * len(shared) + ["General Chart"] * len(general)
    n = len(account_ids)
    rng = rng_for(cfg, "MainAccounts")
    kinds = [_ACCOUNT_KINDS[a[0]] for a in account_ids]
    active_from = sometimes_empty_date(
        rng, np.full(n, day_seconds(cfg.anchor.replace(month=1, day=1)), dtype=np.int64), 0.8
    )
    return {
        "ChartOfAccounts": obj(charts),
        "MainAccountId": account_ids,
        "Name": obj([f"{k[2]} {a}" for k, a in zip(kinds, account_ids)]),
        "MainAccountType": obj([k[0] for k in kinds]),
        "MainAccountCategory": with_empty(rng, obj([k[1] for k in kinds]), 0.2),
        "AccountCategoryDescription": obj([k[2] for k in kinds]),
        "PostingType": pick(rng, ("None", "LedgerJournal", "VendBalance", "Tax"), n, (0.7, 0.1, 0.1, 0.1)),
        "IsSuspended": pick(rng, ("No", "Yes"), n, (0.95, 0.05)),
        "ActiveFrom": active_from,
        "ActiveTo": np.full(n, EMPTY_DATE, dtype=np.int64),
        "MainAccountRecId": np.arange(FIRST_MAIN_ACCOUNT_RECID, FIRST_MAIN_ACCOUNT_RECID + n, dtype=np.int64),
        "ChartOfAccountsRecId": np.array([CHARTS[c] for c in charts], dtype=np.int64),
    }


def ledgers(cfg: SandboxConfig) -> Columns:
    companies = list(cfg.companies)
    n = len(companies)
    currencies = [locale(c)[1] for c in companies]
    return {
        "LegalEntityId": obj(companies),
        "LedgerRecId": np.array([ledger_recid(cfg, c) for c in companies], dtype=np.int64),
        "Name": obj([c.upper() for c in companies]),
        "Description": obj([company_name(c) for c in companies]),
        "AccountingCurrency": obj(currencies),
        "ReportingCurrency": full("USD", n),
        "ChartOfAccounts": full("Shared", n),
        "ChartOfAccountsRecId": np.full(n, CHARTS["Shared"], dtype=np.int64),
        "FiscalCalendar": full("Fiscal", n),
        "ExchangeRateType": full("Default", n),
        "AccountStructureName1": full("Manufacturing B/S", n),
        "AccountStructureName2": full("Manufacturing P&L", n),
    }


def fiscal_years(cfg: SandboxConfig) -> Columns:
    years = list(_years(cfg))
    return {
        "Name": obj([str(y) for y in years]),
        "FiscalCalendar": np.full(len(years), FISCAL_CALENDAR_RECID, dtype=np.int64),
        "StartDate": np.array([day_seconds(dt.date(y, 1, 1)) for y in years], dtype=np.int64),
        "EndDate": np.array([day_seconds(dt.date(y, 12, 31)) for y in years], dtype=np.int64),
        "SourceKey": np.array([fiscal_year_recid(y) for y in years], dtype=np.int64),
    }


def fiscal_periods(cfg: SandboxConfig) -> Columns:
    months = [(y, m) for y in _years(cfg) for m in range(1, 13)]
    ends = [dt.date(y + m // 12, m % 12 + 1, 1) - dt.timedelta(days=1) for y, m in months]
    return {
        "Name": obj([f"{y} period {m:02d}" for y, m in months]),
        "ShortName": obj([f"P{m:02d}" for _, m in months]),
        "FiscalCalendarYear": np.array([fiscal_year_recid(y) for y, _ in months], dtype=np.int64),
        "FiscalCalendar": np.full(len(months), FISCAL_CALENDAR_RECID, dtype=np.int64),
        "StartDate": np.array([day_seconds(dt.date(y, m, 1)) for y, m in months], dtype=np.int64),
        "EndDate": np.array([day_seconds(e) for e in ends], dtype=np.int64),
        "Quarter": obj([f"Q{(m - 1) // 3 + 1}" for _, m in months]),
        "Month": obj([f"Month{m}" for _, m in months]),
        "Type": full("Operating", len(months)),
        "SourceKey": np.array([fiscal_period_recid(y, m) for y, m in months], dtype=np.int64),
    }


def gl_lines_per_company(cfg: SandboxConfig) -> int:
    return max(2, per_day(cfg, GL_LINES_PER_DAY))


def _voucher_sizes(rng: np.random.Generator, lines: int) -> np.ndarray:
    """Lines per voucher (2 to 6, mostly 2), summing to exactly ``lines``."""
    draws = rng.choice(np.array([2, 2, 2, 2, 3, 3, 4, 5, 6]), lines // 2 + 1)
    ends = np.cumsum(draws)
    k = int(np.searchsorted(ends, lines))
    sizes = draws[: k + 1].copy()
    sizes[-1] = lines - (ends[k - 1] if k else 0)
    if sizes[-1] < 2:
        sizes[-2] += sizes[-1]
        sizes = sizes[:-1]
    return sizes


def _balanced(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``values`` with each voucher's last line replaced by minus the sum of its other lines."""
    out = values.copy()
    last = np.cumsum(sizes) - 1
    out[last] = 0
    out[last] = -np.add.reduceat(out, np.cumsum(sizes) - sizes)
    return out


def _company_ledger(cfg: SandboxConfig, company: str, combos: LedgerCombinations) -> tuple[Columns, Columns]:
    rng = rng_for(cfg, "GeneralJournal", company)
    sizes = _voucher_sizes(rng, gl_lines_per_company(cfg))
    v, n = len(sizes), int(sizes.sum())
    voucher = np.repeat(np.arange(v), sizes)
    is_last = np.zeros(n, dtype=bool)
    is_last[np.cumsum(sizes) - 1] = True
    days = spread_days(cfg, v)
    kind = rng.choice(len(_VOUCHERS), v, p=_VOUCHER_P)
    category, debit_type, credit_type, text, prefix = (obj([k[i] for k in _VOUCHERS])[kind] for i in range(5))
    dates = [dt.date(1970, 1, 1) + dt.timedelta(days=int(s // 86_400)) for s in days.tolist()]
    headers = {
        "JournalNumber": obj([f"GJ{i:08d}" for i in range(1, v + 1)]),
        "FiscalCalendarYear": np.array([fiscal_year_recid(d.year) for d in dates], dtype=np.int64),
        "Ledger": np.full(v, ledger_recid(cfg, company), dtype=np.int64),
        "PostingLayer": pick(rng, ("Current", "Operations", "Tax"), v, (0.95, 0.03, 0.02)),
        "SubledgerVoucherDataAreaId": full(company, v),
        "AccountingDate": days,
        "DocumentDate": sometimes_empty_date(rng, days - rng.integers(0, 6, v) * 86_400, 0.3),
        "JournalCategory": category,
        "DocumentNumber": with_empty(rng, obj([f"DOC{i:08d}" for i in rng.integers(0, 10**8, v)]), 0.3),
        "SubledgerVoucher": obj([f"{p}{i:08d}" for p, i in zip(prefix, range(1, v + 1))]),
        "CreatedOn": days - 43_200 + rng.integers(6 * 3_600, 20 * 3_600, v),
        "FiscalCalendarPeriod": np.array([fiscal_period_recid(d.year, d.month) for d in dates], dtype=np.int64),
        "AcknowledgementDate": days.copy(),
    }
    currency = locale(company)[1]
    rate_num, rate_den = REPORTING_RATE.get(currency, (1, 1))
    accounting = amounts(rng, n, 1, 50_000)
    accounting[rng.random(n) < 0.002] = LOSSY_AMOUNT
    accounting = np.where(np.repeat(rng.random(v) < 0.3, sizes), -accounting, accounting)
    foreign = np.repeat(rng.random(v) < 0.1, sizes)
    combo = combos.pick(rng, n)
    purchase = np.repeat(category == "Purch", sizes) & ~is_last
    lines = {
        "voucher": voucher,
        "PostingType": np.where(is_last, np.repeat(credit_type, sizes), np.repeat(debit_type, sizes)),
        "AccountingCurrencyAmount": _balanced(accounting, sizes),
        "ReportingCurrencyAmount": _balanced(accounting // rate_den * rate_num, sizes),
        "TransactionCurrencyAmount": _balanced(np.where(foreign, accounting // 10 * 11, accounting), sizes),
        "TransactionCurrencyCode": np.where(foreign, "USD" if currency != "USD" else "EUR", currency).astype(object),
        "LedgerAccount": combos.display[combo],
        "LedgerDimensionValuesJson": combos.json[combo],
        "MainAccount": combos.account[combo],  # a position in main_account_ids until the caller maps it
        "Text": np.repeat(text, sizes),
        "Quantity": np.where(purchase, rng.integers(1, 100, n) * UNITS, 0).astype(np.int64),
    }
    lines["IsCredit"] = np.where(lines["AccountingCurrencyAmount"] < 0, "Yes", "No").astype(object)
    return headers, lines


def general_ledger(cfg: SandboxConfig) -> tuple[Columns, Columns]:
    """Voucher headers and lines of every company, SourceKeys in accounting-date order across companies."""
    accounts = list(main_account_ids(cfg))
    combos = LedgerCombinations(rng_for(cfg, "LedgerCombinations"), accounts, cfg.dimension_delimiter)
    parts = [_company_ledger(cfg, c, combos) for c in cfg.companies]
    sizes = [len(h["JournalNumber"]) for h, _ in parts]
    offsets = np.cumsum([0] + sizes[:-1])
    for offset, (_, lines) in zip(offsets, parts):
        lines["voucher"] = lines["voucher"] + offset
    headers, lines = concat([h for h, _ in parts]), concat([ln for _, ln in parts])
    company = np.repeat(np.arange(len(parts)), sizes)
    order = np.lexsort((np.arange(len(company)), company, headers["AccountingDate"]))
    headers = {name: column[order] for name, column in headers.items()}
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    header_keys = np.arange(FIRST_RECID, FIRST_RECID + len(order), dtype=np.int64)
    headers["SourceKey"] = header_keys
    line_order = np.lexsort((np.arange(len(lines["voucher"])), rank[lines["voucher"]]))
    lines = {name: column[line_order] for name, column in lines.items()}
    lines["GeneralJournalEntry"] = header_keys[rank[lines.pop("voucher")]]
    lines["SourceKey"] = np.arange(FIRST_RECID, FIRST_RECID + len(line_order), dtype=np.int64)
    lines["MainAccount"] = FIRST_MAIN_ACCOUNT_RECID + lines["MainAccount"]  # the Shared chart's RecIds
    return headers, lines
