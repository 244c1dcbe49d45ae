"""``/data/$metadata`` (EDMX) and the F&O metadata service ``/Metadata/PublicEntities``.

Both are rendered from the same schemas the data is served from. The EDMX has the real tenant's shape:
no MaxLength/Precision/Scale facets, ``Nullable="false"`` only where a property is not nullable, and on
every property the ``Microsoft.Dynamics.OData.Core.V1.AXType`` annotation (in the element form the real
EDMX uses) that tells an X++ Date from a UtcDateTime.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from .filters import evaluate, parse_filter
from .schema import NAMESPACE, EntitySchema, FieldDef, enums

AXTYPE = "Microsoft.Dynamics.OData.Core.V1.AXType"
# The metadata service's DataType names differ from the AXType members only for Int32.
_DATA_TYPES = {"Int32": "Int"}
_TYPE_NAMES = {
    "Date": "TransDate",
    "UtcDateTime": "UtcDateTime",
    "Real": "AmountMST",
    "Int64": "RecId",
    "Int32": "Integer",
    "String": "Name",
    "Guid": "Guid",
    "Container": "Container",
}


def _property_xml(f: FieldDef) -> str:
    nullable = "" if f.nullable else ' Nullable="false"'
    return (
        f"<Property Name={quoteattr(f.name)} Type={quoteattr(f.edm_type)}{nullable}>"
        f'<Annotation Term="{AXTYPE}"><EnumMember>{AXTYPE}/{f.xpp}</EnumMember></Annotation></Property>'
    )


def edmx(schemas: Iterable[EntitySchema]) -> bytes:
    schemas = list(schemas)
    used = sorted({f.enum for s in schemas for f in s.fields if f.enum})
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">',
        "<edmx:DataServices>",
        f'<Schema Namespace="{NAMESPACE}" xmlns="http://docs.oasis-open.org/odata/ns/edm">',
    ]
    for s in schemas:
        parts.append(f'<EntityType Name="{s.public_name}">')
        parts.append("<Key>" + "".join(f'<PropertyRef Name="{k}" />' for k in s.keys) + "</Key>")
        parts += [_property_xml(f) for f in s.fields]
        parts.append("</EntityType>")
    for name in used:
        parts.append(f'<EnumType Name="{name}">')
        parts += [f"<Member Name={quoteattr(m)} Value=\"{v}\" />" for m, v in enums()[name].items()]
        parts.append("</EnumType>")
    parts.append('<EntityContainer Name="Resources">')
    parts += [f'<EntitySet Name="{s.entity_set}" EntityType="{s.type_name}" />' for s in schemas]
    parts += ["</EntityContainer>", "</Schema>", "</edmx:DataServices>", "</edmx:Edmx>"]
    return "\n".join(parts).encode()


def is_dimension(field: FieldDef) -> bool:
    """Financial-dimension display fields: ``LedgerAccount`` and ``...Dimension...DisplayValue``."""
    return field.name == "LedgerAccount" or ("Dimension" in field.name and field.name.endswith("DisplayValue"))


def public_entity(schema: EntitySchema) -> dict[str, Any]:
    """One entity as the F&O metadata service describes it (the X++ DataType tells dates from instants)."""
    return {
        "Name": schema.public_name,
        "EntitySetName": schema.entity_set,
        "LabelId": f"@FoSandbox:{schema.public_name}",
        "IsReadOnly": schema.entity_set.endswith("BiEntities"),
        "ConfigurationEnabled": True,
        "Properties": [
            {
                "Name": f.name,
                "TypeName": f.enum or _TYPE_NAMES.get(f.xpp, f.xpp),
                "DataType": _DATA_TYPES.get(f.xpp, f.xpp),
                "LabelId": f"@FoSandbox:{f.name}",
                "IsKey": f.is_key,
                "IsMandatory": f.is_key,
                "ConfigurationEnabled": True,
                "AllowEdit": not f.is_key,
                "AllowEditOnCreate": True,
                "IsDimension": is_dimension(f),
                "DimensionRelation": "",
                "IsDynamicDimension": False,
                "DimensionLegalEntityProperty": "",
                "DimensionTypeProperty": "",
            }
            for f in schema.fields
        ],
        "NavigationProperties": [],
        "PropertyGroups": [],
        "Actions": [],
    }


_LOOKUP_FIELDS = {
    "Name": FieldDef("Name", "Edm.String", False, "String", True),
    "EntitySetName": FieldDef("EntitySetName", "Edm.String", False, "String", True),
}


def find_public_entities(schemas: Iterable[EntitySchema], filter_text: str) -> list[dict[str, Any]]:
    """``/Metadata/PublicEntities?$filter=...`` over Name and EntitySetName (ODataQueryError if invalid)."""
    schemas = list(schemas)
    if not filter_text.strip():
        return [public_entity(s) for s in schemas]
    columns = {
        "Name": np.array([s.public_name for s in schemas], dtype=object),
        "EntitySetName": np.array([s.entity_set for s in schemas], dtype=object),
    }
    mask = evaluate(parse_filter(filter_text), _LOOKUP_FIELDS, columns, "Microsoft.Dynamics.Metadata.PublicEntity")
    return [public_entity(s) for s, hit in zip(schemas, mask) if hit]
