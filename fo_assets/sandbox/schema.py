"""The sandbox tenant's entities, read from a real tenant's metadata (``real_tenant/entities.json``).

Entity sets, keys (in order), every property in the file's order with its Edm type, nullability and enum
type, and the enum members with their values come from that file and nothing else; the sandbox imports
nothing from the connector. Only one entity is not from it: the opt-in customer extension
``ContosoProjectBudgets`` (``EXTENSION_ENTITIES``), declared here for tests of extension entities.

X++ types (the ``AXType`` annotation that tells a Date from a UtcDateTime) are taken from the file where it
has them (``CustomersV3``) and otherwise derived by ``derive_xpp_type``; docs/sandbox.md states the rule and
how sure it is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

NAMESPACE = "Microsoft.Dynamics.DataEntities"
Storage = Literal["str", "int", "dec", "time", "bool"]

_EDM_XPP = {
    "Edm.String": "String",
    "Edm.Int32": "Int32",
    "Edm.Int64": "Int64",
    "Edm.Decimal": "Real",
    "Edm.Guid": "Guid",
    "Edm.Binary": "Container",
    # X++ boolean is the system enum "boolean": the same tenant's EDMX annotates its Edm.Boolean properties Enum.
    "Edm.Boolean": "Enum",
}
# Edm.DateTimeOffset names that hold instants (X++ UtcDateTime) rather than dates; see derive_xpp_type.
_INSTANT_NAME = re.compile(r"(DateTime|Valid(From|To)|^CreatedOn|^ModifiedOn)$", re.IGNORECASE)


def derive_xpp_type(name: str, edm_type: str) -> str:
    """The X++ type of a property whose metadata capture lacks its AXType annotation.

    Edm types map one to one (String, Int32, Int64, Decimal->Real, Guid, Binary->Container, enums and
    Edm.Boolean->Enum). Edm.DateTimeOffset is ambiguous: UtcDateTime for names ending in ``DateTime``,
    ``CreatedOn``/``ModifiedOn`` (the BI entities' creation stamps) and date-effective validity
    (``ValidFrom``/``ValidTo``, ``AddressValidFrom``, ``RemittanceAddressValidTo``...); Date for everything
    else (``InvoiceDate``, ``AccountingDate``, ``ActiveFrom``, ``Closed``, ``...ValidToDate``...).
    """
    if edm_type == "Edm.DateTimeOffset":
        return "UtcDateTime" if _INSTANT_NAME.search(name) else "Date"
    if edm_type.startswith(NAMESPACE + "."):
        return "Enum"
    return _EDM_XPP[edm_type]


@dataclass(frozen=True)
class FieldDef:
    name: str
    edm_type: str  # Edm.* or Microsoft.Dynamics.DataEntities.<Enum>
    nullable: bool
    xpp: str  # X++ type in the AXType vocabulary: String, Int32, Int64, Real, Date, UtcDateTime, Enum, Guid...
    xpp_from_metadata: bool  # False: derived by derive_xpp_type
    is_key: bool = False

    @property
    def enum(self) -> str | None:
        return self.edm_type.removeprefix(NAMESPACE + ".") if self.edm_type.startswith(NAMESPACE + ".") else None

    @property
    def storage(self) -> Storage:
        """How the column is held: objects (str, enum symbol, guid, base64), int64, int64 in 10**-6 units,
        int64 epoch seconds, or bool."""
        storage: dict[str, Storage] = {
            "Edm.Int32": "int",
            "Edm.Int64": "int",
            "Edm.Decimal": "dec",
            "Edm.DateTimeOffset": "time",
            "Edm.Boolean": "bool",
        }
        return storage.get(self.edm_type, "str")


@dataclass(frozen=True)
class EntitySchema:
    entity_set: str
    public_name: str  # the entity type (VendorV2 for VendorsV2), also the metadata service's entity name
    fields: tuple[FieldDef, ...]
    keys: tuple[str, ...]  # in the order of the EDMX <Key>
    from_real_tenant: bool = True

    @property
    def company_field(self) -> str | None:
        """The field ``cross-company`` applies to: company-specific entities expose ``dataAreaId``."""
        return "dataAreaId" if "dataAreaId" in self.by_name else None

    @property
    def by_name(self) -> dict[str, FieldDef]:
        return {f.name: f for f in self.fields}

    @property
    def type_name(self) -> str:
        return f"{NAMESPACE}.{self.public_name}"


@cache
def _real_tenant() -> dict[str, Any]:
    text = resources.files("fo_assets.sandbox").joinpath("real_tenant", "entities.json").read_text("utf-8")
    return json.loads(text)


@cache
def enums() -> dict[str, dict[str, int]]:
    """Enum type -> {member: value}, as the real tenant declares them."""
    return {name: dict(members) for name, members in _real_tenant()["enums"].items()}


def enum_default(enum: str) -> str:
    """The member an unset enum field shows: the 0-valued one (or the lowest, where no member is 0)."""
    members = enums()[enum]
    return min(members, key=lambda m: (members[m] != 0, members[m]))


def _field(spec: list[Any], keys: tuple[str, ...]) -> FieldDef:
    name, edm_type, nullable = spec[:3]
    xpp = spec[3] if len(spec) > 3 else None
    return FieldDef(
        name=name,
        edm_type=edm_type,
        nullable=bool(nullable),
        xpp=xpp or derive_xpp_type(name, edm_type),
        xpp_from_metadata=xpp is not None,
        is_key=name in keys,
    )


def _real_schema(entity_set: str, spec: dict[str, Any]) -> EntitySchema:
    keys = tuple(spec["keys"])
    return EntitySchema(entity_set, spec["type"], tuple(_field(p, keys) for p in spec["properties"]), keys)


# A customer extension, NOT from the real metadata: served only with SandboxConfig(extension_entities=True),
# so tests can add an entity the standard catalog does not know (keys, a modified timestamp as its window).
EXTENSION_ENTITIES: dict[str, dict[str, Any]] = {
    "ContosoProjectBudgets": {
        "type": "ContosoProjectBudget",
        "keys": ["dataAreaId", "ProjectId", "BudgetLineId"],
        "properties": [
            ["dataAreaId", "Edm.String", False, "String"],
            ["ProjectId", "Edm.String", False, "String"],
            ["BudgetLineId", "Edm.Int64", False, "Int64"],
            ["CostCategory", "Edm.String", True, "String"],
            ["Amount", "Edm.Decimal", False, "Real"],
            ["CurrencyCode", "Edm.String", True, "String"],
            ["ApproverPersonalNote", "Edm.String", True, "String"],
            ["ModifiedDateTime1", "Edm.DateTimeOffset", False, "UtcDateTime"],
        ],
    }
}


@cache
def tenant_schemas(extension_entities: bool = False) -> dict[str, EntitySchema]:
    """Every entity set the sandbox serves, in the file's order (then the extension, if asked for)."""
    schemas = {name: _real_schema(name, spec) for name, spec in _real_tenant()["entities"].items()}
    if extension_entities:
        for name, spec in EXTENSION_ENTITIES.items():
            schema = _real_schema(name, spec)
            schemas[name] = EntitySchema(schema.entity_set, schema.public_name, schema.fields, schema.keys, False)
    return schemas
