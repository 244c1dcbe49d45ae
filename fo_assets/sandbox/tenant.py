"""The generated tenant: one lazily built Table per entity set, plus ground-truth accessors."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import orjson

from fo_assets.catalog import BY_ENTITY_SET

from . import gen_docs, gen_master
from .config import SandboxConfig
from .gen_common import Columns, concat
from .schema import EntitySchema, FieldDef, entity_schema
from .table import Table


class Tenant:
    def __init__(self, cfg: SandboxConfig) -> None:
        self.cfg = cfg
        self._tables: dict[str, Table] = {}
        self._pairs: dict[str, list[Columns | None]] = {}
        # Bumped on every change of an entity; query and page caches key on it.
        self.versions: dict[str, int] = {}
        self.lock = threading.RLock()

    def schema(self, entity_set: str) -> EntitySchema:
        return entity_schema(entity_set, self.cfg.wide)

    def fields(self, entity_set: str) -> tuple[FieldDef, ...]:
        return self.schema(entity_set).fields

    def table(self, entity_set: str) -> Table:
        with self.lock:
            if entity_set not in self._tables:
                schema = self.schema(entity_set)
                # Row ids (in etags) are distinct across entities and independent of build order.
                base = (list(BY_ENTITY_SET).index(entity_set) + 1) * 10**12
                self._tables[entity_set] = Table(schema, self._generate(schema), base)
                self.versions.setdefault(entity_set, 0)
            return self._tables[entity_set]

    def touch(self, entity_set: str) -> None:
        self.versions[entity_set] = self.versions.get(entity_set, 0) + 1

    def rows(self, entity_set: str, company: str | None = None) -> list[dict[str, Any]]:
        """The rows exactly as served (amounts as Decimal), without ``@odata.etag``, in key order."""
        return self.select(entity_set, company)

    def select(self, entity_set: str, company: str | None = None, **equal: Any) -> list[dict[str, Any]]:
        """``rows`` narrowed to those whose fields equal ``equal`` (exact match, stored form)."""
        with self.lock:
            table = self.table(entity_set)
            mask = np.ones(len(table), dtype=bool)
            if company is not None and table.schema.company_field:
                mask &= table.columns[table.schema.company_field] == company.lower()
            for name, value in equal.items():
                mask &= table.columns[name] == value
            names = [f.name for f in table.schema.fields]
            payload = orjson.dumps(table.render(np.flatnonzero(mask), names))
        rows = json.loads(payload, parse_float=Decimal)
        for row in rows:
            del row["@odata.etag"]
        return rows

    def _generate(self, schema: EntitySchema) -> Columns:
        cfg = self.cfg
        name = schema.entity_set
        known = {f.name for f in entity_schema(name, False).fields}
        extra = tuple(f for f in schema.fields if f.name not in known)
        per_company: dict[str, Callable[[str], Columns]] = {
            "VendorsV2": lambda c: gen_master.vendors(cfg, c, extra),
            "CustomersV3": lambda c: gen_master.customers(cfg, c, extra),
            "ReleasedProductsV2": lambda c: gen_master.released_products(cfg, c),
            "PurchaseOrderHeadersV2": lambda c: self._half("po", c, gen_docs.purchase_orders, 0),
            "PurchaseOrderLinesV2": lambda c: self._half("po", c, gen_docs.purchase_orders, 1),
            "VendorInvoiceHeaders": lambda c: self._half("vi", c, gen_docs.vendor_invoices, 0),
            "VendorInvoiceLines": lambda c: self._half("vi", c, gen_docs.vendor_invoices, 1),
        }
        if name == "ProductsV2":
            return gen_master.products(cfg)
        if name == "MainAccounts":
            return gen_master.main_accounts(cfg)
        if name == "GeneralJournalAccountEntries":
            step = gen_docs.gl_count(cfg)
            return concat(
                [
                    gen_docs.general_journal(cfg, c, gen_docs.FIRST_GL_RECID + i * step)
                    for i, c in enumerate(cfg.companies)
                ]
            )
        return concat([per_company[name](c) for c in cfg.companies])

    def _half(
        self, kind: str, company: str, make: Callable[[SandboxConfig, str], tuple[Columns, Columns]], index: int
    ) -> Columns:
        """Headers and lines are generated together; the other half waits here until its table is built."""
        key = f"{kind}:{company}"
        halves = self._pairs.pop(key, None) or list(make(self.cfg, company))
        half, halves[index] = halves[index], None
        if any(h is not None for h in halves):
            self._pairs[key] = halves
        return half
