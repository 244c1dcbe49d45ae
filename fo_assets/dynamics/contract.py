"""Whether a catalog entry agrees with a tenant's metadata, fact by fact.

One check serves two purposes: at the start of every run against the live tenant (a mismatch fails that
entity, naming what differs), and in the contract test against a real tenant's recorded ``$metadata``
(fo_assets/sandbox/real_tenant/entities.json), where ``strict`` also requires every personal, dimension
and listed field to exist, so the standard catalog cannot drift from what F&O exposes.
"""

from __future__ import annotations

from collections.abc import Callable

from fo_assets.catalog import EntitySpec
from fo_assets.dynamics.errors import SchemaError
from fo_assets.dynamics.schema import EntitySchema, FieldInfo

SchemaOf = Callable[[str], EntitySchema]  # raises SchemaError for an entity set the tenant lacks


def mismatches(spec: EntitySpec, schema_of: SchemaOf, *, strict: bool = False) -> list[str]:
    """Every way ``spec`` disagrees with the tenant; empty when it agrees."""
    try:
        schema = schema_of(spec.entity_set)
    except SchemaError as exc:
        return [exc.reason]
    problems: list[str] = []

    def need(role: str, name: str | None, kinds: tuple[str, ...] = (), on: EntitySchema = schema) -> FieldInfo | None:
        if not name:
            return None
        found = on.get(name)
        if found is None:
            problems.append(f"{role} {name!r} does not exist in {on.entity_set}")
        elif kinds and found.kind not in kinds:
            problems.append(f"{role} {name!r} of {on.entity_set} is {found.edm_type}, not {' or '.join(kinds)}")
        return found

    if tuple(schema.keys) != spec.keys:
        problems.append(f"the key is ({', '.join(schema.keys)}) in the tenant, not ({', '.join(spec.keys)})")
    for name in spec.derived_columns:
        if schema.get(name) is not None:
            problems.append(f"derived column {name!r} collides with a field of the same name in the tenant")
    if spec.company_field and spec.company_field not in spec.derived_columns:
        need("company field", spec.company_field, ("string",))
    need("window field", spec.window_field, ("date", "instant"))
    need("modified-time field", spec.changed_field, ("instant",))
    if spec.open_states:
        need("status field", spec.open_states.field, ("enum",))
    for binding in spec.events:
        for naming in binding.namings:
            for _, field in naming:
                need(f"{binding.business_event_id} lookup field", field)
    for name in spec.excluded_fields:
        need("excluded field", name)
    if spec.company_lookup:
        problems += _lookup_mismatches(spec, schema, schema_of, need)
    if spec.parent:
        problems += _parent_mismatches(spec, schema, schema_of, need)
    if strict:
        for name in spec.personal_fields:
            need("personal field", name)
        for dimension in spec.dimensions:
            need("dimension field", dimension.field, ("string",))
            need("account type field", dimension.account_type_field)
        for name in spec.fields or ():
            need("listed field", name)
    return problems


def _lookup_mismatches(spec: EntitySpec, schema: EntitySchema, schema_of: SchemaOf, need) -> list[str]:
    lookup = spec.company_lookup
    assert lookup is not None
    try:
        target = schema_of(lookup.entity_set)
    except SchemaError as exc:
        return [f"company lookup: {exc.reason}"]
    pointer = need("company lookup field", lookup.field)
    key = need("company lookup key", lookup.key, on=target)
    need("company field", lookup.company_field, ("string",), on=target)
    if pointer and key and pointer.edm_type != key.edm_type:
        return [f"{lookup.field} ({pointer.edm_type}) cannot point at {lookup.entity_set}.{lookup.key} ({key.edm_type})"]
    return []


def _parent_mismatches(spec: EntitySpec, schema: EntitySchema, schema_of: SchemaOf, need) -> list[str]:
    link = spec.parent
    assert link is not None
    try:
        header = schema_of(link.entity_set)
    except SchemaError as exc:
        return [f"header entity: {exc.reason}"]
    problems = []
    for line_name, header_name in link.join:
        line = need("join field", line_name)
        head = need("header join field", header_name, on=header)
        if line and head and line.edm_type != head.edm_type:
            problems.append(f"join {line_name} ({line.edm_type}) = {link.entity_set}.{header_name} ({head.edm_type}) "
                            "compares different types")
    for name in link.inherit:
        if name != spec.company_field:  # the company comes through the header's own company mechanism
            need("inherited header field", name, on=header)
    return problems
