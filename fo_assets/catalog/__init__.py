"""The entity catalog: every F&O entity a code location lands, and everything the code needs to know of it.

The standard entities (``standard.py``) plus what a code location's catalog file adds or leaves out
(``custom.py``) make one ``Catalog``; the extraction engine, the sinks, the Dagster assets, the sensor and
the checks all read it, and nothing else hard-codes an entity set, a key or a field.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from fo_assets.catalog.spec import (
    CompanyLookup,
    DimensionField,
    EntitySpec,
    EventBinding,
    Mode,
    OpenStates,
    ParentLink,
    snake_case,
)
from fo_assets.catalog.standard import STANDARD_ENTITIES

__all__ = [
    "STANDARD", "Catalog", "CatalogError", "CompanyLookup", "DimensionField", "EntitySpec", "EventBinding",
    "Mode", "OpenStates", "ParentLink", "snake_case",
]


class CatalogError(ValueError):
    """The catalog contradicts itself (an unknown parent, a duplicate table); the message names the entity."""


class Catalog:
    """An ordered, validated set of entity specs."""

    def __init__(self, specs: Iterable[EntitySpec]):
        self.specs = tuple(specs)
        self._by_set = {spec.entity_set: spec for spec in self.specs}
        self._by_table = {spec.table: spec for spec in self.specs}
        if len(self._by_set) != len(self.specs) or len(self._by_table) != len(self.specs):
            raise CatalogError("two catalog entries share an entity set or a table name")
        for spec in self.specs:
            _check(spec, self._by_set)

    def __iter__(self) -> Iterator[EntitySpec]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    def __contains__(self, entity_set: object) -> bool:
        return entity_set in self._by_set

    def spec_for(self, entity_set: str) -> EntitySpec:
        """The spec of ``entity_set``; a KeyError names the entity sets the catalog has."""
        try:
            return self._by_set[entity_set]
        except KeyError:
            known = ", ".join(sorted(self._by_set))
            raise KeyError(f"unknown entity set {entity_set!r}: the catalog has {known}") from None

    def by_table(self, table: str) -> EntitySpec:
        """The spec that lands ``table``; a KeyError if none does."""
        try:
            return self._by_table[table]
        except KeyError:
            raise KeyError(f"no catalog entity lands table {table!r}") from None

    def children_of(self, entity_set: str) -> tuple[EntitySpec, ...]:
        """The line entities whose header is ``entity_set``."""
        return tuple(spec for spec in self.specs if spec.parent and spec.parent.entity_set == entity_set)

    def bindings_for_event(self, business_event_id: str) -> list[tuple[EntitySpec, EventBinding]]:
        """The entities a Business Event names, each with the binding that maps its fields to their keys."""
        return [
            (spec, binding)
            for spec in self.specs
            for binding in spec.events
            if binding.business_event_id == business_event_id
        ]

    def mode_of(self, spec: EntitySpec) -> Mode:
        """How a daily run reads the entity: by its own date, with its headers, or whole."""
        if spec.window_field:
            return "window"
        if spec.parent and self.spec_for(spec.parent.entity_set).window_field:
            return "lines"
        # Lines of a header read whole are read whole too: one scan instead of a key lookup per header.
        return "snapshot"


def _check(spec: EntitySpec, known: dict[str, EntitySpec]) -> None:
    def fail(problem: str) -> CatalogError:
        return CatalogError(f"catalog entry {spec.entity_set}: {problem}")

    if not spec.keys or len(set(spec.keys)) != len(spec.keys):
        raise fail(f"keys {spec.keys} must be a non-empty list of distinct fields")
    derived = spec.derived_columns
    if spec.company_field and spec.company_field not in derived and spec.company_field not in spec.keys:
        raise fail(f"company field {spec.company_field!r} is not part of the key {spec.keys}")
    if spec.company_lookup and spec.company_lookup.entity_set not in known:
        raise fail(f"its company is looked up in {spec.company_lookup.entity_set}, which is not in the catalog")
    if spec.parent:
        if spec.parent.entity_set not in known:
            raise fail(f"its header entity {spec.parent.entity_set} is not in the catalog")
        if not spec.parent.join:
            raise fail("a line entity needs the fields that join it to its header")
    clash = set(spec.excluded_fields + spec.personal_fields) & {*spec.keys, *derived, spec.window_field or ""}
    if clash:
        raise fail(f"fields {sorted(clash)} cannot be excluded: they are keys, derived or window fields")


STANDARD = Catalog(STANDARD_ENTITIES)
