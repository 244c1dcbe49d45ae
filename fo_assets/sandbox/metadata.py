"""``/data/$metadata`` (EDMX) and the F&O metadata service ``/Metadata/PublicEntities``.

Both are derived from the same schema the data is served from, so they always agree with the rows.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from fo_assets.catalog import BY_ENTITY_SET

from .filters import evaluate, parse_filter
from .schema import ENUMS, NAMESPACE, EntitySchema, FieldDef

_TYPE_NAMES = {
    "Date": "TransDate",
    "UtcDateTime": "UtcDateTime",
    "Real": "AmountMST",
    "Int64": "RecId",
    "Int": "Integer",
    "String": "Name",
}


def _property_xml(f: FieldDef) -> str:
    attrs = [f"Name={quoteattr(f.name)}", f"Type={quoteattr(f.edm_type)}"]
    if f.is_key or f.storage != "str" or f.xpp == "Enum":
        attrs.append('Nullable="false"')
    if f.max_length and f.xpp == "String":
        attrs.append(f'MaxLength="{f.max_length}"')
    if f.xpp == "Real":
        attrs.append(f'Precision="{f.precision}" Scale="{f.scale}"')
    return f"<Property {' '.join(attrs)} />"


def edmx(schemas: tuple[EntitySchema, ...]) -> bytes:
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
    for name, members in ENUMS.items():
        parts.append(f'<EnumType Name="{name}">')
        parts += [f'<Member Name="{m}" Value="{i}" />' for i, m in enumerate(members)]
        parts.append("</EnumType>")
    parts.append('<EntityContainer Name="Resources">')
    parts += [f'<EntitySet Name="{s.entity_set}" EntityType="{s.type_name}" />' for s in schemas]
    parts += ["</EntityContainer>", "</Schema>", "</edmx:DataServices>", "</edmx:Edmx>"]
    return "\n".join(parts).encode()


def public_entity(schema: EntitySchema) -> dict[str, Any]:
    """One entity as the F&O metadata service describes it (the X++ DataType tells dates from instants)."""
    dimension_fields = {d.field for d in BY_ENTITY_SET[schema.entity_set].dimensions}
    return {
        "Name": schema.public_name,
        "EntitySetName": schema.entity_set,
        "LabelId": f"@FoSandbox:{schema.public_name}",
        "IsReadOnly": False,
        "ConfigurationEnabled": True,
        "Properties": [
            {
                "Name": f.name,
                "TypeName": f.enum if f.xpp == "Enum" else _TYPE_NAMES[f.xpp],
                "DataType": f.xpp,
                "LabelId": f"@FoSandbox:{f.name}",
                "IsKey": f.is_key,
                "IsMandatory": f.mandatory,
                "ConfigurationEnabled": True,
                "AllowEdit": not f.is_key,
                "AllowEditOnCreate": True,
                "IsDimension": f.name in dimension_fields,
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


_LOOKUP_FIELDS = {"Name": FieldDef("Name", "String"), "EntitySetName": FieldDef("EntitySetName", "String")}


def find_public_entities(schemas: tuple[EntitySchema, ...], filter_text: str) -> list[dict[str, Any]]:
    """``/Metadata/PublicEntities?$filter=...`` over Name and EntitySetName (ODataQueryError if invalid)."""
    if not filter_text.strip():
        return [public_entity(s) for s in schemas]
    columns = {
        "Name": np.array([s.public_name for s in schemas], dtype=object),
        "EntitySetName": np.array([s.entity_set for s in schemas], dtype=object),
    }
    mask = evaluate(parse_filter(filter_text), _LOOKUP_FIELDS, columns, "Microsoft.Dynamics.Metadata.PublicEntity")
    return [public_entity(s) for s, hit in zip(schemas, mask) if hit]
