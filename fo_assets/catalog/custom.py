"""A code location's own catalog file: entities it adds, fields it leaves out, personal data it opts into.

``FO_CATALOG_FILE`` names a TOML file (README, "Adding an entity")::

    [[entities]]
    entity_set = "ContosoProjectBudgets"
    keys = ["dataAreaId", "ProjectId", "BudgetLineId"]
    group = "finance"
    description = "Project budget lines, read by their last change."
    window_field = "ModifiedDateTime1"

    [exclude]
    VendorsV2 = ["Notes"]

    [personal_data]          # personal fields this location is allowed to land, one by one
    CustomersV3 = ["PrimaryContactEmail"]

The file states the entities; whether the tenant agrees (the set exists, the key is the key, the fields
exist) is checked against its ``$metadata`` when a run starts.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from fo_assets.catalog import STANDARD, Catalog, CatalogError, EntitySpec, ParentLink

GROUPS = ("master_data", "finance", "procurement", "extensions")
_ENTITY_KEYS = {
    "entity_set", "keys", "group", "description", "company_field", "window_field", "changed_field", "fields",
    "excluded_fields", "page_size", "parent",
}


def load_catalog(path: Path | None) -> Catalog:
    """The standard catalog changed by the file at ``path`` (None: the standard catalog)."""
    if path is None:
        return STANDARD
    try:
        document = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise CatalogError(f"cannot read the catalog file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path} is not valid TOML: {exc}") from None
    unknown = set(document) - {"entities", "exclude", "personal_data"}
    if unknown:
        raise CatalogError(f"{path}: unknown sections {sorted(unknown)} (expected entities, exclude, personal_data)")
    added = [_entity(path, index, entry) for index, entry in enumerate(document.get("entities", []))]
    specs = {spec.entity_set: spec for spec in STANDARD}
    for spec in added:
        if spec.entity_set in specs:
            raise CatalogError(f"{path}: {spec.entity_set} is a standard entity already; use [exclude] to change it")
        specs[spec.entity_set] = spec
    for entity_set, names in _field_lists(path, document, "exclude").items():
        spec = _known(path, specs, entity_set, "exclude")
        specs[entity_set] = dataclasses.replace(spec, excluded_fields=(*spec.excluded_fields, *names))
    for entity_set, names in _field_lists(path, document, "personal_data").items():
        spec = _known(path, specs, entity_set, "personal_data")
        stray = sorted(set(names) - set(spec.personal_fields))
        if stray:
            raise CatalogError(f"{path} [personal_data]: {entity_set} has no personal fields {stray} to opt into "
                               f"(its personal fields: {', '.join(spec.personal_fields) or 'none'})")
        kept = tuple(name for name in spec.personal_fields if name not in names)
        specs[entity_set] = dataclasses.replace(spec, personal_fields=kept)
    try:
        return Catalog(specs.values())
    except CatalogError as exc:
        raise CatalogError(f"{path}: {exc}") from None


def _entity(path: Path, index: int, entry: Any) -> EntitySpec:
    where = f"{path} [[entities]] #{index + 1}"
    if not isinstance(entry, dict):
        raise CatalogError(f"{where}: expected a table of settings")
    unknown = set(entry) - _ENTITY_KEYS
    if unknown:
        raise CatalogError(f"{where}: unknown settings {sorted(unknown)}")
    for required in ("entity_set", "keys", "description"):
        if not entry.get(required):
            raise CatalogError(f"{where}: {required} is required")
    group = entry.get("group", "extensions")
    if group not in GROUPS:
        raise CatalogError(f"{where}: group {group!r} is not one of {', '.join(GROUPS)}")
    company = entry.get("company_field", "dataAreaId")
    parent = entry.get("parent")
    link = None
    if parent is not None:
        try:
            link = ParentLink(parent["entity_set"], tuple((line, header) for line, header in parent["join"]))
        except (KeyError, TypeError, ValueError):
            raise CatalogError(f"{where}: parent must be {{entity_set = \"...\", join = [[\"line field\", "
                               "\"header field\"], ...]}}") from None
    return EntitySpec(
        entity_set=_text(where, entry, "entity_set"),
        keys=_names(where, entry, "keys"),
        group=group,
        description=_text(where, entry, "description"),
        company_field=company or None,  # "" declares a shared entity
        window_field=entry.get("window_field"),
        changed_field=entry.get("changed_field"),
        parent=link,
        fields=_names(where, entry, "fields") if "fields" in entry else None,
        excluded_fields=_names(where, entry, "excluded_fields") if "excluded_fields" in entry else (),
        page_size=_page_size(where, entry.get("page_size")),
    )


def _text(where: str, entry: dict[str, Any], name: str) -> str:
    value = entry[name]
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(f"{where}: {name} must be a non-empty string")
    return value.strip()


def _names(where: str, entry: dict[str, Any], name: str) -> tuple[str, ...]:
    value = entry[name]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise CatalogError(f"{where}: {name} must be a list of field names")
    return tuple(value)


def _page_size(where: str, value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or not 1 <= value <= 10_000:
        raise CatalogError(f"{where}: page_size must be a whole number from 1 to 10000 (F&O's largest page)")
    return value


def _field_lists(path: Path, document: dict[str, Any], section: str) -> dict[str, tuple[str, ...]]:
    table = document.get(section, {})
    if not isinstance(table, dict):
        raise CatalogError(f"{path}: [{section}] must map entity sets to lists of field names")
    return {entity_set: _names(f"{path} [{section}]", table, entity_set) for entity_set in table}


def _known(path: Path, specs: dict[str, EntitySpec], entity_set: str, section: str) -> EntitySpec:
    if entity_set not in specs:
        raise CatalogError(f"{path} [{section}]: {entity_set} is not in the catalog")
    return specs[entity_set]
