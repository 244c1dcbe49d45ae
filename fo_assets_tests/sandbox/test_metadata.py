"""$metadata and /Metadata/PublicEntities describe exactly what the data endpoints serve."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

import httpx
import pytest

from fo_assets.catalog import CATALOG, EntitySpec
from fo_assets.sandbox import Sandbox

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
NS = "Microsoft.Dynamics.DataEntities"


@pytest.fixture(scope="module")
def edmx(shared_client: httpx.Client) -> ET.Element:
    response = shared_client.get("/data/$metadata")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
    return ET.fromstring(response.content)


def _entity_type(edmx: ET.Element, entity_set: str) -> ET.Element:
    sets = {s.get("Name"): s.get("EntityType") for s in edmx.iter(f"{EDM}EntitySet")}
    type_name = sets[entity_set].removeprefix(NS + ".")
    return next(t for t in edmx.iter(f"{EDM}EntityType") if t.get("Name") == type_name)


@pytest.mark.parametrize("spec", CATALOG, ids=lambda s: s.entity_set)
def test_metadata_agrees_with_catalog_and_rows(edmx: ET.Element, shared_client: httpx.Client, spec: EntitySpec) -> None:
    entity_type = _entity_type(edmx, spec.entity_set)
    keys = [ref.get("Name") for ref in entity_type.iter(f"{EDM}PropertyRef")]
    assert keys == list(spec.key_columns)
    props = {p.get("Name"): p for p in entity_type.iter(f"{EDM}Property")}
    enums = {e.get("Name"): {m.get("Name") for m in e.iter(f"{EDM}Member")} for e in edmx.iter(f"{EDM}EnumType")}
    rows = shared_client.get(
        f"/data/{spec.entity_set}",
        params={"cross-company": "true", "$top": "30"},
    ).json(parse_float=Decimal)["value"]
    for row in rows:
        assert list(row)[1:] == list(props)  # every served field is declared, in the same order
        for name, value in row.items():
            if name == "@odata.etag":
                continue
            edm_type = props[name].get("Type")
            if edm_type == "Edm.DateTimeOffset":
                assert value.endswith("Z")
            elif edm_type == "Edm.Decimal":
                scale = int(props[name].get("Scale"))
                assert isinstance(value, (int, Decimal)) and (
                    isinstance(value, int) or -value.as_tuple().exponent <= scale
                )
            elif edm_type.startswith(NS + "."):
                assert value in enums[edm_type.removeprefix(NS + ".")]
            elif edm_type in ("Edm.Int64", "Edm.Int32"):
                assert isinstance(value, int)
            else:
                assert edm_type == "Edm.String" and (value is None or isinstance(value, str))
                if value is None:
                    assert props[name].get("Nullable") != "false"


def test_public_entity_tells_dates_from_instants(
    shared_sandbox: Sandbox, shared_client: httpx.Client, edmx: ET.Element
) -> None:
    by_name = shared_client.get("/Metadata/PublicEntities('VendorInvoiceHeader')").json()
    by_set = shared_client.get(
        "/Metadata/PublicEntities", params={"$filter": "EntitySetName eq 'VendorInvoiceHeaders'"}
    ).json()
    assert by_set["value"] == [{k: v for k, v in by_name.items() if k != "@odata.context"}]
    assert by_name["EntitySetName"] == "VendorInvoiceHeaders" and by_name["Name"] == "VendorInvoiceHeader"
    types = {p["Name"]: p["DataType"] for p in by_name["Properties"]}
    assert types["InvoiceDate"] == "Date" and types["PostedDateTime"] == "UtcDateTime"
    assert types["InvoiceAmount"] == "Real" and types["IsOnHold"] == "Enum" and types["HeaderReference"] == "String"
    assert [p["Name"] for p in by_name["Properties"] if p["IsKey"]] == ["dataAreaId", "HeaderReference"]
    declared = [p.get("Name") for p in _entity_type(edmx, "VendorInvoiceHeaders").iter(f"{EDM}Property")]
    assert [p["Name"] for p in by_name["Properties"]] == declared


@pytest.mark.parametrize(
    ("public_name", "entity_set"),
    [
        ("VendorV2", "VendorsV2"),
        ("GeneralJournalAccountEntry", "GeneralJournalAccountEntries"),
        ("PurchaseOrderHeaderV2", "PurchaseOrderHeadersV2"),
        ("MainAccount", "MainAccounts"),
    ],
)
def test_public_entities_use_singular_names(shared_client: httpx.Client, public_name: str, entity_set: str) -> None:
    body = shared_client.get(f"/Metadata/PublicEntities('{public_name}')").json()
    assert body["EntitySetName"] == entity_set
    assert shared_client.get(f"/Metadata/PublicEntities('{entity_set}')").status_code == 404


def test_dimension_fields_are_flagged(shared_client: httpx.Client) -> None:
    props = shared_client.get("/Metadata/PublicEntities('GeneralJournalAccountEntry')").json()["Properties"]
    assert [p["Name"] for p in props if p["IsDimension"]] == ["LedgerAccount"]
    assert {p["Name"]: p["DataType"] for p in props}["GeneralJournalAccountEntryRecId"] == "Int64"
