"""What an entity looks like in the tenant, and how the catalog's spec maps onto it.

``EntitySchema`` is built from the tenant's metadata (see ``metadata.py``): the EDMX gives names, keys
and Edm types with precision and scale; the F&O metadata service gives the X++ data type, the only way
to tell a date-only field from an instant (both are ``Edm.DateTimeOffset`` in the EDMX).
``plan_entity`` checks a catalog spec against it and decides what to ``$select`` and which Arrow type
each column lands as.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import pyarrow as pa

from fo_assets.catalog import EntitySpec
from fo_assets.dynamics.errors import SchemaError

Kind = Literal["string", "enum", "guid", "bool", "int32", "int64", "decimal", "double", "date", "instant", "other"]

# X++ ``real`` is stored as NUMERIC(32,16) in F&O's database: the widest value a field can hold, used
# when the EDMX leaves the scale open (``Scale="Variable"``) or omits precision.
DEFAULT_PRECISION = 32
DEFAULT_SCALE = 16

_EDM_KINDS: dict[str, Kind] = {
    "Edm.String": "string",
    "Edm.Guid": "guid",
    "Edm.Boolean": "bool",
    "Edm.Byte": "int32",
    "Edm.SByte": "int32",
    "Edm.Int16": "int32",
    "Edm.Int32": "int32",
    "Edm.Int64": "int64",
    "Edm.Decimal": "decimal",
    "Edm.Double": "double",
    "Edm.Single": "double",
    "Edm.Date": "date",
    "Edm.DateTimeOffset": "instant",
}


@dataclass(frozen=True)
class FieldInfo:
    """One property of an entity as its metadata declares it."""
    name: str
    edm_type: str  # Edm.* or the qualified enum type, e.g. Microsoft.Dynamics.DataEntities.NoYes
    kind: Kind
    precision: int | None = None
    scale: int | None = None

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type the field is landed as."""
        if self.kind == "decimal":
            precision = self.precision or DEFAULT_PRECISION
            scale = DEFAULT_SCALE if self.scale is None else self.scale
            return pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
        return _ARROW[self.kind]


_ARROW: dict[str, pa.DataType] = {
    "string": pa.string(),
    "enum": pa.string(),
    "guid": pa.string(),
    "other": pa.string(),
    "bool": pa.bool_(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "double": pa.float64(),
    "date": pa.date32(),
    "instant": pa.timestamp("us", tz="UTC"),
}


def field_kind(edm_type: str, is_enum: bool, xpp_type: str | None) -> Kind:
    """The landing kind of a property: the X++ data type settles what the Edm type leaves open."""
    if is_enum or ((xpp_type or "").lower() == "enum" and edm_type not in _EDM_KINDS):
        return "enum"
    kind = _EDM_KINDS.get(edm_type, "other")
    if kind == "instant" and (xpp_type or "").lower() == "date":
        return "date"
    return kind


@dataclass(frozen=True)
class EntitySchema:
    """An entity's type, keys and fields, as the tenant's metadata declares them."""
    entity_set: str
    entity_type: str
    keys: tuple[str, ...]
    fields: tuple[FieldInfo, ...]

    def get(self, name: str) -> FieldInfo | None:
        """The field called ``name``, or None."""
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, FieldInfo]:
        return {f.name: f for f in self.fields}


# A $select naming more than this many characters of fields is not sent: the whole entity is read and
# the fields left out are dropped while decoding (never written), so no URL grows past what front ends take.
MAX_SELECT_CHARS = 2_000


@dataclass(frozen=True)
class EntityPlan:
    """How one catalog entity is read from one tenant."""

    spec: EntitySpec
    schema: EntitySchema
    select: tuple[FieldInfo, ...]  # the fields read and landed, in order; a decoded page has these columns
    removed_fields: tuple[str, ...] = ()  # fields the catalog expects that the tenant no longer has
    derived: tuple[pa.Field, ...] = ()  # columns added to every landed row from other entities

    @property
    def arrow_schema(self) -> pa.Schema:
        """The columns of a decoded page."""
        return pa.schema([pa.field(f.name, f.arrow_type) for f in self.select])

    @property
    def select_names(self) -> tuple[str, ...]:
        """The names in ``$select`` order."""
        return tuple(f.name for f in self.select)

    @property
    def select_option(self) -> tuple[str, ...] | None:
        """The ``$select`` to send: None when it would name every public field (the same answer) or make a
        URL of several KB (a 300-field entity less its personal fields): then the whole row is read."""
        if len(self.select) == len(self.schema.fields) or len(",".join(self.select_names)) > MAX_SELECT_CHARS:
            return None
        return self.select_names

    @property
    def day_column(self) -> str | None:
        """The landed column that says which day a row belongs to: the window field, or for lines the
        header's date they inherit (GL lines' AccountingDate)."""
        names = {*self.select_names, *(f.name for f in self.derived)}
        if self.spec.window_field in names:
            return self.spec.window_field
        inherited = self.spec.parent.inherit if self.spec.parent else ()
        dates = [f.name for f in self.derived if f.name in inherited and pa.types.is_date(f.type)]
        return dates[0] if dates else None

    def field(self, name: str) -> FieldInfo:
        """The field called ``name`` (a KeyError when the plan lacks it)."""
        found = self.schema.get(name)
        if found is None:  # the contract check and plan_entity checked every field the engine asks for
            raise KeyError(name)
        return found

    @property
    def order_by(self) -> tuple[str, ...]:
        """The full row identity: F&O pages by offset, and only an order over a unique key is stable."""
        return self.spec.key_columns


def unknown_entity_set(entity_set: str, known: Iterable[str]) -> SchemaError:
    """The error for an entity set the tenant does not have, with the nearest names it does."""
    known = list(known)
    near = difflib.get_close_matches(entity_set, known, n=5, cutoff=0.6)
    near += [k for k in known if k.lower() == entity_set.lower() and k not in near]
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    return SchemaError(
        f"entity set {entity_set!r} is not in the tenant's metadata{hint} "
        "(entity set names are plural and case-sensitive, e.g. CustomersV3)",
        entity_set=entity_set,
    )


def plan_entity(spec: EntitySpec, schema: EntitySchema, derived: tuple[pa.Field, ...] = ()) -> EntityPlan:
    """Choose the fields to read and land (the spec was checked against the tenant already): every public
    field, or the spec's list plus what the engine needs, less excluded and personal fields."""
    dimension_fields = [n for d in spec.dimensions for n in (d.field, d.account_type_field) if n]
    essentials = [
        *spec.key_columns,
        *(name for name in (spec.company_filter_field, spec.window_field, spec.changed_field) if name),
        *((spec.open_states.field,) if spec.open_states else ()),
        *(spec.parent.line_fields if spec.parent else ()),
    ]
    if spec.fields is None:
        wanted = [f.name for f in schema.fields]
    else:
        wanted = [*essentials, *spec.fields, *dimension_fields]
    left_out = {*spec.excluded_fields, *spec.personal_fields}
    removed = [n for n in dict.fromkeys([*(spec.fields or ()), *dimension_fields]) if schema.get(n) is None]
    select = [schema.get(n) for n in dict.fromkeys(wanted) if n not in left_out]
    return EntityPlan(spec, schema, tuple(f for f in select if f is not None), tuple(removed), derived)
