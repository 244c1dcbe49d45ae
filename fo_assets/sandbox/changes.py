"""Change simulation: update, insert and delete records so the next OData read sees the change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fo_assets.catalog import BY_ENTITY_SET

from .tenant import Tenant

Op = Literal["update", "insert", "delete"]


@dataclass(frozen=True)
class Change:
    op: Op
    entity_set: str
    key: dict[str, Any]


class Changes:
    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.log: list[Change] = []  # every change so far, oldest first (events are emitted from it)

    def _key(self, entity_set: str, key: Mapping[str, Any]) -> dict[str, Any]:
        """The full key; a company-scoped key may omit the company field (default company)."""
        spec = BY_ENTITY_SET[entity_set]
        full = dict(key)
        if spec.company_field and spec.company_field not in full:
            full[spec.company_field] = self.tenant.cfg.default_company
        if spec.company_field:
            full[spec.company_field] = str(full[spec.company_field]).lower()
        return full

    def update(self, entity_set: str, key: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
        full = self._key(entity_set, key)
        with self.tenant.lock:
            self.tenant.table(entity_set).update(full, values)
            self.tenant.touch(entity_set)
        self.log.append(Change("update", entity_set, full))
        return full

    def insert(self, entity_set: str, values: Mapping[str, Any]) -> dict[str, Any]:
        spec = BY_ENTITY_SET[entity_set]
        row = dict(values)
        if spec.company_field:
            row[spec.company_field] = str(row.get(spec.company_field, self.tenant.cfg.default_company)).lower()
        with self.tenant.lock:
            table = self.tenant.table(entity_set)
            table.insert(row)
            self.tenant.touch(entity_set)
        full = {k: row[k] for k in table.schema.keys}
        self.log.append(Change("insert", entity_set, full))
        return full

    def delete(self, entity_set: str, key: Mapping[str, Any]) -> dict[str, Any]:
        full = self._key(entity_set, key)
        with self.tenant.lock:
            self.tenant.table(entity_set).delete(full)
            self.tenant.touch(entity_set)
        self.log.append(Change("delete", entity_set, full))
        return full

    def apply(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The admin endpoint's form: {"op": "update", "entity_set": ..., "key": {...}, "values": {...}}."""
        op, entity_set = payload.get("op"), payload.get("entity_set", "")
        if entity_set not in BY_ENTITY_SET:
            raise KeyError(f"unknown entity set {entity_set!r}")
        if op == "update":
            return self.update(entity_set, payload["key"], payload.get("values", {}))
        if op == "insert":
            return self.insert(entity_set, payload["values"])
        if op == "delete":
            return self.delete(entity_set, payload["key"])
        raise ValueError(f"op must be update, insert or delete, got {op!r}")
