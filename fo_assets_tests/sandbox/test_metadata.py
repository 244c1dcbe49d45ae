"""The sandbox's tenant is the real tenant's metadata: $metadata, /Metadata/PublicEntities and the rows
agree with the file property by property, and nothing of the connector is used to build it."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from fo_assets.sandbox import Sandbox

from .conftest import NS, REAL_TENANT, client_for, real_tenant, small_config, token_for

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
AXTYPE = "Microsoft.Dynamics.OData.Core.V1.AXType"
ENTITIES = real_tenant()["entities"]


@pytest.fixture(scope="module")
def edmx(shared_client: httpx.Client) -> ET.Element:
    response = shared_client.get("/data/$metadata")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
    return ET.fromstring(response.content)


def _entity_type(edmx: ET.Element, entity_set: str) -> ET.Element:
    sets = {s.get("Name"): s.get("EntityType") for s in edmx.iter(f"{EDM}EntitySet")}
    type_name = sets[entity_set].removeprefix(NS + ".")
    return next(t for t in edmx.iter(f"{EDM}EntityType") if t.get("Name") == type_name)


def _ax_type(prop: ET.Element) -> str:
    (annotation,) = [a for a in prop.iter(f"{EDM}Annotation") if a.get("Term") == AXTYPE]
    return annotation.find(f"{EDM}EnumMember").text.removeprefix(AXTYPE + "/")


def test_every_entity_set_of_the_real_tenant_and_nothing_else(edmx: ET.Element) -> None:
    sets = [s.get("Name") for s in edmx.iter(f"{EDM}EntitySet")]
    assert sets == list(ENTITIES)
    assert len(sets) == 39 and "GeneralJournalAccountEntries" not in sets


@pytest.mark.parametrize("entity_set", list(ENTITIES))
def test_keys_and_properties_are_the_real_ones(edmx: ET.Element, entity_set: str) -> None:
    spec = ENTITIES[entity_set]
    entity_type = _entity_type(edmx, entity_set)
    assert entity_type.get("Name") == spec["type"]
    assert [r.get("Name") for r in entity_type.iter(f"{EDM}PropertyRef")] == spec["keys"]
    props = list(entity_type.iter(f"{EDM}Property"))
    assert [(p.get("Name"), p.get("Type"), p.get("Nullable") != "false") for p in props] == [
        (name, edm_type, nullable) for name, edm_type, nullable, *_ in spec["properties"]
    ]
    for prop in props:  # the real tenant declares no facets, and every property has its AXType
        assert not {"MaxLength", "Precision", "Scale"} & set(prop.attrib)
        assert _ax_type(prop)


def test_enum_types_have_the_real_members_and_values(edmx: ET.Element) -> None:
    declared = {
        e.get("Name"): {m.get("Name"): int(m.get("Value")) for m in e.iter(f"{EDM}Member")}
        for e in edmx.iter(f"{EDM}EnumType")
    }
    assert declared == real_tenant()["enums"]
    assert declared["VersioningDocumentState"]["Confirmed"] == 40  # values are not positions


def test_axtype_tells_dates_from_instants(edmx: ET.Element) -> None:
    customers = {p.get("Name"): _ax_type(p) for p in _entity_type(edmx, "CustomersV3").iter(f"{EDM}Property")}
    assert customers == {name: ax for name, _, _, ax in ENTITIES["CustomersV3"]["properties"]}  # from the file
    derived = {
        ("VendInvoiceJourBiEntities", "InvoiceDate"): "Date",
        ("VendInvoiceJourBiEntities", "SysModifiedDateTime"): "UtcDateTime",
        ("VendInvoiceJourBiEntities", "CreatedOn"): "UtcDateTime",
        ("GeneralJournalEntryBiEntities", "AccountingDate"): "Date",
        ("VendTransBiEntities", "Closed"): "Date",
        ("VendorsV2", "AddressValidFrom"): "UtcDateTime",
        ("VendorInvoiceHeaders", "VarianceApprovedDateTime"): "UtcDateTime",
        ("GeneralJournalAccountEntryBiEntities", "MainAccount"): "Int64",
        ("VendorInvoiceHeaders", "Recalculation"): "Enum",  # Edm.Boolean
        ("VendorInvoiceHeaders", "BusinessDocumentSubmissionId_W"): "Guid",
    }
    for (entity_set, name), ax in derived.items():
        props = {p.get("Name"): p for p in _entity_type(edmx, entity_set).iter(f"{EDM}Property")}
        assert _ax_type(props[name]) == ax, (entity_set, name)


@pytest.mark.parametrize("entity_set", list(ENTITIES))
def test_rows_are_as_wide_as_the_entity_and_typed_as_declared(
    edmx: ET.Element, shared_client: httpx.Client, entity_set: str
) -> None:
    props = {p.get("Name"): p for p in _entity_type(edmx, entity_set).iter(f"{EDM}Property")}
    enums = {e.get("Name"): {m.get("Name") for m in e.iter(f"{EDM}Member")} for e in edmx.iter(f"{EDM}EnumType")}
    body = shared_client.get(f"/data/{entity_set}", params={"cross-company": "true", "$top": "30"}).json(
        parse_float=Decimal
    )
    assert body["value"]
    for row in body["value"]:
        assert list(row)[1:] == list(props)  # every property, in the declared order
        for name, value in list(row.items())[1:]:
            edm_type, nullable = props[name].get("Type"), props[name].get("Nullable") != "false"
            if value is None:
                assert nullable and edm_type in ("Edm.String", "Edm.Binary"), name
            elif edm_type == "Edm.DateTimeOffset":
                day_part = "T12:00:00Z" if _ax_type(props[name]) == "Date" else "Z"
                assert value.endswith(day_part), (name, value)
            elif edm_type == "Edm.Decimal":
                assert isinstance(value, (int, Decimal))
            elif edm_type.startswith(NS + "."):
                assert value in enums[edm_type.removeprefix(NS + ".")], (name, value)
            elif edm_type in ("Edm.Int64", "Edm.Int32"):
                assert isinstance(value, int) and not isinstance(value, bool)
            elif edm_type == "Edm.Boolean":
                assert isinstance(value, bool)
            else:
                assert isinstance(value, str), (name, value)


def test_wide_entities_are_as_wide_as_the_real_ones(shared_sandbox: Sandbox) -> None:
    assert len(shared_sandbox.tenant.rows("VendorsV2")[0]) == 290
    assert len(shared_sandbox.tenant.rows("CustomersV3")[0]) == 305


def test_public_entity_tells_dates_from_instants(shared_client: httpx.Client, edmx: ET.Element) -> None:
    by_name = shared_client.get("/Metadata/PublicEntities('VendInvoiceJourBiEntity')").json()
    by_set = shared_client.get(
        "/Metadata/PublicEntities", params={"$filter": "EntitySetName eq 'VendInvoiceJourBiEntities'"}
    ).json()
    assert by_set["value"] == [{k: v for k, v in by_name.items() if k != "@odata.context"}]
    types = {p["Name"]: p["DataType"] for p in by_name["Properties"]}
    assert types["InvoiceDate"] == "Date" and types["SysModifiedDateTime"] == "UtcDateTime"
    assert types["InvoiceAmount"] == "Real" and types["SourceKey"] == "Int64" and types["SysRecVersion"] == "Int"
    assert [p["Name"] for p in by_name["Properties"] if p["IsKey"]] == ["dataAreaId", "SourceKey"]
    declared = [p.get("Name") for p in _entity_type(edmx, "VendInvoiceJourBiEntities").iter(f"{EDM}Property")]
    assert [p["Name"] for p in by_name["Properties"]] == declared


@pytest.mark.parametrize(
    ("public_name", "entity_set"),
    [
        ("VendorV2", "VendorsV2"),
        ("GeneralJournalAccountEntryBiEntity", "GeneralJournalAccountEntryBiEntities"),
        ("PurchaseOrderHeaderV2", "PurchaseOrderHeadersV2"),
        ("Ledger", "Ledgers"),
    ],
)
def test_public_entities_use_singular_names(shared_client: httpx.Client, public_name: str, entity_set: str) -> None:
    body = shared_client.get(f"/Metadata/PublicEntities('{public_name}')").json()
    assert body["EntitySetName"] == entity_set
    assert shared_client.get(f"/Metadata/PublicEntities('{entity_set}')").status_code == 404


def test_dimension_fields_are_flagged(shared_client: httpx.Client) -> None:
    props = shared_client.get("/Metadata/PublicEntities('GeneralJournalAccountEntryBiEntity')").json()["Properties"]
    assert [p["Name"] for p in props if p["IsDimension"]] == ["LedgerAccount"]
    vendor = shared_client.get("/Metadata/PublicEntities('VendorV2')").json()["Properties"]
    assert "DefaultLedgerDimensionDisplayValue" in [p["Name"] for p in vendor if p["IsDimension"]]


@pytest.mark.parametrize("path", ["GeneralJournalAccountEntries", "GeneralJournalAccountEntries/$count", "Vendors"])
def test_sets_fo_does_not_expose_answer_404(shared_client: httpx.Client, path: str) -> None:
    response = shared_client.get(f"/data/{path}", params={"cross-company": "true"})
    assert response.status_code == 404
    assert "No HTTP resource was found that matches the request URI" in response.json()["error"]["message"]


def test_the_extension_entity_is_served_only_when_asked_for(shared_client: httpx.Client) -> None:
    assert shared_client.get("/data/ContosoProjectBudgets").status_code == 404
    with Sandbox(small_config(extension_entities=True)) as sb, client_for(sb, token_for(sb)) as client:
        rows = client.get("/data/ContosoProjectBudgets", params={"cross-company": "true"}).json()["value"]
        assert {r["dataAreaId"] for r in rows} == set(sb.cfg.companies)
        assert len({(r["dataAreaId"], r["ProjectId"], r["BudgetLineId"]) for r in rows}) == len(rows)
        edmx = ET.fromstring(client.get("/data/$metadata").content)
        budget = _entity_type(edmx, "ContosoProjectBudgets")
        assert [r.get("Name") for r in budget.iter(f"{EDM}PropertyRef")] == ["dataAreaId", "ProjectId", "BudgetLineId"]
        modified = next(p for p in budget.iter(f"{EDM}Property") if p.get("Name") == "ModifiedDateTime1")
        assert _ax_type(modified) == "UtcDateTime"


def test_the_sandbox_imports_nothing_of_the_connector() -> None:
    """Serving a whole tenant loads only the sandbox's own modules (and fo_assets' empty package)."""
    script = (
        "import sys\n"
        "from fo_assets.sandbox import Sandbox, SandboxConfig\n"
        "from fo_assets.sandbox import cli\n"
        "with Sandbox(SandboxConfig(scale=0.02, days=1)) as sb:\n"
        "    [sb.tenant.table(name) for name in sb.tenant.schemas]\n"
        "print(sorted(m for m in sys.modules if m.startswith('fo_assets')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    loaded = ast.literal_eval(out)
    assert "fo_assets.sandbox.tenant" in loaded
    assert [m for m in loaded if m != "fo_assets" and not m.startswith("fo_assets.sandbox")] == []


@pytest.mark.slow
def test_a_built_package_carries_the_metadata_and_serves(tmp_path: Path) -> None:
    """What a wheel installs (setuptools' build_py, which bdist_wheel runs) holds the metadata file, and a
    sandbox imported from that copy, not from the source tree, builds its tenant from it."""
    root, project, build = Path(__file__).resolve().parents[2], tmp_path / "project", tmp_path / "lib"
    # A clean copy of the project: no egg-info left by the editable install may decide what is included.
    shutil.copytree(root / "fo_assets", project / "fo_assets", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, project / name)
    subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py", "-d", str(build)],
        cwd=project,
        check=True,
        capture_output=True,
    )
    assert (build / "fo_assets/sandbox/real_tenant/entities.json").read_bytes() == REAL_TENANT.read_bytes()
    assert b"Never edit it" in (build / "fo_assets/sandbox/real_tenant/PROVENANCE.md").read_bytes()
    script = (
        "import fo_assets.sandbox, sys\n"
        "from fo_assets.sandbox.tenant import Tenant\n"
        "from fo_assets.sandbox.config import SandboxConfig\n"
        "print(fo_assets.sandbox.__file__, len(Tenant(SandboxConfig(scale=0.02, days=1)).rows('VendorsV2')[0]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env={"PYTHONPATH": str(build)}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    where, width = out.stdout.split()
    assert where.startswith(str(build)) and width == "290"
