"""The other entities of the real tenant's file (a few rows each, so a customer can add one as an extra
entity in tests), the companies themselves, the dimension setup, and the opt-in customer extension."""

from __future__ import annotations

import numpy as np

from . import dimensions
from .config import SandboxConfig
from .gen_common import CITIES, Columns, amounts, full, ids, locale, obj, per_day, pick, rng_for, spread_days
from .gen_ledger import FIRST_RECID, company_name
from .schema import EntitySchema
from .values import UNITS, day_seconds

GENERIC_ROWS = 5  # per company for company-specific entities, in all for shared ones


def generic_rows(cfg: SandboxConfig, schema: EntitySchema, company: str | None) -> Columns:
    """``GENERIC_ROWS`` rows that fill only the key (every other field stays unset)."""
    n = GENERIC_ROWS
    anchor = day_seconds(cfg.anchor)
    given: Columns = {}
    for name in schema.keys:
        field = schema.by_name[name]
        if name == schema.company_field and company is not None:
            given[name] = full(company, n)
        elif field.storage == "str":
            given[name] = ids(f"{name[:10].upper()}-{{:03d}}", n)
        elif field.storage == "time":
            given[name] = anchor - np.arange(n, dtype=np.int64) * 86_400
        elif field.storage == "dec":
            given[name] = (np.arange(n, dtype=np.int64) + 1) * UNITS
        else:
            given[name] = FIRST_RECID + np.arange(n, dtype=np.int64)
    return given


def companies(cfg: SandboxConfig) -> Columns:
    names = [company_name(c) for c in cfg.companies]
    return {
        "DataArea": obj(list(cfg.companies)),
        "Name": obj(names),
        "KnownAs": obj([c.upper() for c in cfg.companies]),
        "LanguageId": obj([{"DEU": "de", "GBR": "en-GB"}.get(locale(c)[0], "en-US") for c in cfg.companies]),
        "PartyNumber": ids("{:09d}", len(names), 1_000),
    }


def legal_entities(cfg: SandboxConfig) -> Columns:
    countries = [locale(c)[0] for c in cfg.companies]
    return {
        "LegalEntityId": obj(list(cfg.companies)),
        "Name": obj([company_name(c) for c in cfg.companies]),
        "CompanyName": obj([company_name(c) for c in cfg.companies]),
        "AddressCountryRegionId": obj(countries),
        "AddressCity": obj([CITIES.get(c, CITIES["USA"])[0] for c in countries]),
        "PartyNumber": ids("{:09d}", len(countries), 1_000),
    }


def dimension_attributes() -> Columns:
    names = ("MainAccount", "BusinessUnit", "Department", "CostCenter")
    return {
        "DimensionName": obj(list(names)),
        "ReportColumnName": obj(list(names)),
        "UseValuesFrom": obj(["Main accounts", "Operating units", "Operating units", "Operating units"]),
    }


def dimension_values() -> Columns:
    """The shared values of the three financial dimensions the display strings use (LegalEntityId blank)."""
    pairs = [("BusinessUnit", v) for v in dimensions.BUSINESS_UNITS]
    pairs += [("Department", v) for v in dimensions.DEPARTMENTS] + [("CostCenter", v) for v in dimensions.COST_CENTERS]
    return {
        "FinancialDimension": obj([d for d, _ in pairs]),
        "LegalEntityId": full("", len(pairs)),
        "DimensionValue": obj([v for _, v in pairs]),
        "Description": obj([f"{d} {v}" for d, v in pairs]),
    }


def project_budgets(cfg: SandboxConfig, company: str) -> Columns:
    """The customer extension ContosoProjectBudgets (not from the real metadata): budget lines changed
    over the ``days`` window, each with its ModifiedDateTime1."""
    rng = rng_for(cfg, "ContosoProjectBudgets", company)
    n = per_day(cfg, 4)
    projects = max(1, n // 4)
    project = np.sort(rng.integers(0, projects, n))
    line = np.concatenate([np.arange(1, c + 1) for c in np.bincount(project, minlength=projects) if c])
    modified = spread_days(cfg, n) - 43_200 + rng.integers(0, 86_400, n)
    return {
        "dataAreaId": full(company, n),
        "ProjectId": obj([f"{company.upper()}-PRJ{p:05d}" for p in project]),
        "BudgetLineId": line.astype(np.int64),
        "CostCategory": pick(rng, ("Labour", "Travel", "Material", "Subcontract"), n),
        "Amount": amounts(rng, n, 100, 250_000),
        "CurrencyCode": full(locale(company)[1], n),
        "ApproverPersonalNote": pick(rng, ("", "on leave until Monday", "call my mobile +44 7700 900123"), n),
        "ModifiedDateTime1": rng.permutation(modified),
    }
