"""The generated tenant: one lazily built Table per entity set of the real tenant's metadata, plus
ground-truth accessors for tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np

from . import gen_fixtures, gen_invoices, gen_ledger, gen_parties, gen_products, gen_purchasing
from .config import SandboxConfig
from .gen_common import Columns, build_rows, concat
from .schema import EntitySchema, FieldDef, tenant_schemas
from .table import Table

# Per-company generators, shared ones, and pairs generated together (headers with their lines).
_PER_COMPANY: dict[str, Callable[[SandboxConfig, str], Columns]] = {
    "VendorsV2": gen_parties.vendors,
    "CustomersV3": gen_parties.customers,
    "ReleasedProductsV2": gen_products.released_products,
    "PurchaseOrderHeadersV2": lambda cfg, c: gen_purchasing.purchase_orders(cfg, c).headers,
    "PurchaseOrderLinesV2": lambda cfg, c: gen_purchasing.purchase_orders(cfg, c).lines,
    "ContosoProjectBudgets": gen_fixtures.project_budgets,
}
_SHARED: dict[str, Callable[[SandboxConfig], Columns]] = {
    "ProductsV2": gen_products.products,
    "MainAccounts": gen_ledger.main_accounts,
    "Ledgers": gen_ledger.ledgers,
    "FiscalCalendarYearBiEntities": gen_ledger.fiscal_years,
    "FiscalCalendarPeriodBiEntities": gen_ledger.fiscal_periods,
    "Companies": gen_fixtures.companies,
    "LegalEntities": gen_fixtures.legal_entities,
    "DimensionAttributes": lambda cfg: gen_fixtures.dimension_attributes(),
    "FinancialDimensionValues": lambda cfg: gen_fixtures.dimension_values(),
}
_PAIRS: dict[str, tuple[str, int]] = {  # entity set -> (pair, half)
    "GeneralJournalEntryBiEntities": ("gl", 0),
    "GeneralJournalAccountEntryBiEntities": ("gl", 1),
    "VendInvoiceJourBiEntities": ("posted", 0),
    "VendInvoiceTransBiEntities": ("posted", 1),
    "VendorInvoiceHeaders": ("pending", 0),
    "VendorInvoiceLines": ("pending", 1),
}
_PAIR_MAKERS: dict[str, Callable[..., tuple[Columns, Columns]]] = {
    "gl": gen_ledger.general_ledger,
    "posted": gen_invoices.posted_invoices,
    "pending": gen_invoices.pending_invoices,  # per company
}
# Entities whose company field is not dataAreaId: the company a test asks for is in this field.
_COMPANY_FIELDS = {"Ledgers": "LegalEntityId", "LegalEntities": "LegalEntityId", "Companies": "DataArea"}


def upper_case_companies(cfg: SandboxConfig, entity_set: str) -> bool:
    """BI entities and Ledgers answer company values in upper case (with ``upper_case_bi_companies``)."""
    return cfg.upper_case_bi_companies and (entity_set.endswith("BiEntities") or entity_set == "Ledgers")


def company_value_fields(schema: EntitySchema) -> list[str]:
    """Fields holding a company id: dataAreaId, SysDataAreaId, SubledgerVoucherDataAreaId..., LegalEntityId."""
    own = _COMPANY_FIELDS.get(schema.entity_set)
    return [f.name for f in schema.fields if f.name == own or f.name == "dataAreaId" or f.name.endswith("DataAreaId")]


def _same_company(column: np.ndarray, company: str) -> np.ndarray:
    """Company ids compare ignoring case, as F&O's SQL collation does."""
    return (column == company.lower()) | (column == company.upper())


class Tenant:
    def __init__(self, cfg: SandboxConfig) -> None:
        self.cfg = cfg
        self.schemas = tenant_schemas(cfg.extension_entities)
        self._tables: dict[str, Table] = {}
        self._halves: dict[tuple[str, str | None], list[Columns | None]] = {}
        # Bumped on every change of an entity; query and page caches key on it.
        self.versions: dict[str, int] = {}
        self.lock = threading.RLock()

    def schema(self, entity_set: str) -> EntitySchema:
        try:
            return self.schemas[entity_set]
        except KeyError:
            raise KeyError(f"the sandbox tenant has no entity set {entity_set!r}") from None

    def fields(self, entity_set: str) -> tuple[FieldDef, ...]:
        return self.schema(entity_set).fields

    def table(self, entity_set: str) -> Table:
        with self.lock:
            if entity_set not in self._tables:
                schema = self.schema(entity_set)
                # Row ids (in etags) are distinct across entities and independent of build order.
                base = (list(self.schemas).index(entity_set) + 1) * 10**12
                self._tables[entity_set] = Table(schema, self._generate(schema), base)
                self.versions.setdefault(entity_set, 0)
            return self._tables[entity_set]

    def touch(self, entity_set: str) -> None:
        self.versions[entity_set] = self.versions.get(entity_set, 0) + 1

    def company_value(self, entity_set: str, company: str) -> str:
        """A company id as this entity stores it (upper case in BI entities and Ledgers)."""
        return company.upper() if upper_case_companies(self.cfg, entity_set) else company.lower()

    def rows(self, entity_set: str, company: str | None = None) -> list[dict[str, Any]]:
        """The rows exactly as served (amounts as Decimal), without ``@odata.etag``, in key order.

        ``company`` selects by the entity's company field; the GL BI entities have none, so their company
        is derived: a header's through ``Ledger`` -> ``Ledgers.LedgerRecId`` -> ``LegalEntityId``, a line's
        through its header. Shared entities ignore it.
        """
        return self.select(entity_set, company)

    def select(self, entity_set: str, company: str | None = None, **equal: Any) -> list[dict[str, Any]]:
        """``rows`` narrowed to those whose fields equal ``equal`` (exact match, stored form)."""
        with self.lock:
            table = self.table(entity_set)
            mask = np.ones(len(table), dtype=bool) if company is None else self.company_mask(entity_set, company)
            for name, value in equal.items():
                mask &= table.columns[name] == value
            names = [f.name for f in table.schema.fields]
            payload = table.render(np.flatnonzero(mask), names)
        rows = json.loads(payload, parse_float=Decimal)
        for row in rows:
            del row["@odata.etag"]
        return rows

    def company_mask(self, entity_set: str, company: str) -> np.ndarray:
        table = self.table(entity_set)
        field = table.schema.company_field or _COMPANY_FIELDS.get(entity_set)
        if field:
            return _same_company(table.columns[field], company)
        if entity_set == "GeneralJournalEntryBiEntities":
            ledgers = self.table("Ledgers")
            recids = ledgers.columns["LedgerRecId"][_same_company(ledgers.columns["LegalEntityId"], company)]
            return np.isin(table.columns["Ledger"], recids)
        if entity_set == "GeneralJournalAccountEntryBiEntities":
            headers = self.table("GeneralJournalEntryBiEntities")
            mine = headers.columns["SourceKey"][self.company_mask("GeneralJournalEntryBiEntities", company)]
            return np.isin(table.columns["GeneralJournalEntry"], mine)
        return np.ones(len(table), dtype=bool)

    def _generate(self, schema: EntitySchema) -> Columns:
        cfg, name = self.cfg, schema.entity_set
        if name in _SHARED:
            columns = self._full(schema, _SHARED[name](cfg), None)
        elif name in _PAIRS and _PAIRS[name][0] != "pending":
            columns = self._full(schema, self._half(name, None), None)
        elif name in _PER_COMPANY or name in _PAIRS or schema.company_field:
            columns = concat([self._full(schema, self._company_part(schema, c), c) for c in cfg.companies])
        else:
            columns = self._full(schema, gen_fixtures.generic_rows(cfg, schema, None), None)
        if upper_case_companies(cfg, name):
            for field in company_value_fields(schema):
                columns[field] = np.array([v.upper() if v else v for v in columns[field].tolist()], dtype=object)
        return columns

    def _company_part(self, schema: EntitySchema, company: str) -> Columns:
        name = schema.entity_set
        if name in _PER_COMPANY:
            return _PER_COMPANY[name](self.cfg, company)
        if name in _PAIRS:
            return self._half(name, company)
        return gen_fixtures.generic_rows(self.cfg, schema, company)

    def _full(self, schema: EntitySchema, given: Columns, company: str | None) -> Columns:
        n = len(next(iter(given.values())))
        return build_rows(self.cfg, schema, n, given, company)

    def _half(self, entity_set: str, company: str | None) -> Columns:
        """Headers and lines are generated together; the other half waits here until its table is built."""
        pair, index = _PAIRS[entity_set]
        key = (pair, company)
        halves = self._halves.pop(key, None)
        if halves is None:
            make = _PAIR_MAKERS[pair]
            halves = list(make(self.cfg) if company is None else make(self.cfg, company))
        half, halves[index] = halves[index], None
        if any(h is not None for h in halves):
            self._halves[key] = halves
        if half is None:
            raise RuntimeError(f"{entity_set} of {company} was taken twice from its generated pair {pair}")
        return half
