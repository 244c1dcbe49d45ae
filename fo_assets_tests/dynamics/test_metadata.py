"""Tenant metadata: EDMX + metadata service -> landing types, cached on disk with a freshness bound."""

from __future__ import annotations

import datetime as dt
import time

import pyarrow as pa
import pytest

from fo_assets.dynamics.auth import TokenProvider
from fo_assets.dynamics.errors import SchemaError
from fo_assets.dynamics.metadata import MetadataStore, folder_for, parse_edmx
from fo_assets.dynamics.odata import ODataClient, ReadTarget
from fo_assets.dynamics.schema import FieldInfo, field_kind
from fo_assets.dynamics.throttle import Counters, Throttle
from fo_assets_tests.support.tenant import settings_for


@pytest.fixture
def store_factory(small_sandbox, tmp_path):
    settings = settings_for(small_sandbox, tmp_path)
    fo = settings.require_fo()
    client = ODataClient(fo, TokenProvider(fo, settings.secret("FO_CLIENT_SECRET")), Throttle(2))

    def fetch(url, entity_set, accept):
        return client.get(url, ReadTarget(entity_set), Counters(), time.monotonic() + 30, accept)

    folder = folder_for(tmp_path, fo.base_url)
    yield lambda max_age=dt.timedelta(hours=24), shared=None, home=folder: MetadataStore(
        home, fo.base_url, fetch, max_age, shared=shared)
    client.close()


class Shelf:
    """A shared cache in memory that can be made to fail, like a volume out of reach."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.down = False

    def read(self, name: str) -> bytes | None:
        if self.down:
            raise OSError("volume unreachable")
        return self.files.get(name)

    def write(self, name: str, data: bytes) -> None:
        if self.down:
            raise OSError("volume unreachable")
        self.files[name] = data


def test_the_shared_cache_serves_a_new_home_and_its_failures_cost_only_a_fetch(store_factory, small_sandbox, tmp_path):
    count = lambda: small_sandbox.stats.count("/data/$metadata")  # noqa: E731
    shelf, before = Shelf(), count()
    store_factory(shared=shelf, home=tmp_path / "pod1").entity("VendorsV2")
    assert sorted(shelf.files) == ["edmx.v2.json"]  # the EDMX alone: its AXType annotations type every field

    schema = store_factory(shared=shelf, home=tmp_path / "pod2").entity("VendorsV2")  # a new pod, empty home
    assert count() - before == 1 and schema.keys == ("dataAreaId", "VendorAccountNumber")

    shelf.down = True
    store_factory(shared=shelf, home=tmp_path / "pod3").entity("VendorsV2")  # fetched, with a warning
    assert count() - before == 2


def test_types_come_from_the_edmx_and_its_axtype_annotation(store_factory, small_sandbox):
    before = small_sandbox.stats.count("/Metadata/")
    schema = store_factory().entity("GeneralJournalEntryBiEntities")
    assert schema.keys == ("JournalNumber", "FiscalCalendarYear", "Ledger")
    types = {f.name: f.arrow_type for f in schema.fields}
    assert types["AccountingDate"] == pa.date32()  # Edm.DateTimeOffset, X++ Date
    assert types["CreatedOn"] == pa.timestamp("us", tz="UTC")  # Edm.DateTimeOffset, X++ UtcDateTime
    assert types["Ledger"] == pa.int64()
    assert types["PostingLayer"] == pa.string() and schema.get("PostingLayer").kind == "enum"
    tenant_fields = small_sandbox.tenant.fields("GeneralJournalEntryBiEntities")
    assert [f.name for f in schema.fields] == [f.name for f in tenant_fields]
    # The real tenant's EDMX has no precision or scale: decimals land as X++ reals are stored.
    lines = store_factory().entity("GeneralJournalAccountEntryBiEntities")
    assert lines.get("AccountingCurrencyAmount").arrow_type == pa.decimal128(32, 16)
    # Every property carries its X++ type in the EDMX: the metadata service was never asked.
    assert small_sandbox.stats.count("/Metadata/") == before


def test_fresh_metadata_is_read_from_disk_and_stale_metadata_is_refetched(store_factory, small_sandbox):
    count = lambda: small_sandbox.stats.count("/data/$metadata")  # noqa: E731
    before = count()
    store_factory().entity("VendorsV2")
    store_factory().entity("VendorsV2")
    assert count() - before == 1
    store_factory(max_age=dt.timedelta(0)).entity("VendorsV2")
    assert count() - before == 2


def test_an_unknown_entity_set_refreshes_once_then_names_near_matches(store_factory, small_sandbox):
    store_factory().entity("VendorsV2")  # an earlier run cached the metadata
    store = store_factory()
    before = small_sandbox.stats.count("/data/$metadata")
    with pytest.raises(SchemaError, match=r"'CustomerV3' is not in the tenant's metadata; did you mean CustomersV3"):
        store.entity("CustomerV3")
    with pytest.raises(SchemaError):
        store.entity("Nope")
    # The cache may predate the entity: one refresh, and only one however many names are missing.
    assert small_sandbox.stats.count("/data/$metadata") - before == 1


def test_edmx_facets():
    edmx = b"""<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>
    <Schema Namespace="Microsoft.Dynamics.DataEntities" xmlns="http://docs.oasis-open.org/odata/ns/edm">
    <EntityType Name="Thing"><Key><PropertyRef Name="Id" /></Key>
      <Property Name="Id" Type="Edm.String" /><Property Name="Qty" Type="Edm.Decimal" Precision="32" Scale="Variable" />
      <Property Name="Kind" Type="Microsoft.Dynamics.DataEntities.ThingKind" />
      <Property Name="On" Type="Edm.DateTimeOffset"><Annotation Term="Microsoft.Dynamics.OData.Core.V1.AXType">
        <EnumMember>Microsoft.Dynamics.OData.Core.V1.AXType/Date</EnumMember></Annotation></Property>
      <Property Name="At" Type="Edm.DateTimeOffset"><Annotation Term="Microsoft.Dynamics.OData.Core.V1.AXType"
        EnumMember="Microsoft.Dynamics.OData.Core.V1.AXType/UtcDateTime" /></Property>
      <NavigationProperty Name="Other" Type="X" />
    </EntityType>
    <EnumType Name="ThingKind"><Member Name="A" Value="0" /></EnumType>
    <EntityContainer Name="C">
      <EntitySet Name="Things" EntityType="Microsoft.Dynamics.DataEntities.Thing" />
    </EntityContainer>
    </Schema></edmx:DataServices></edmx:Edmx>"""
    parsed = parse_edmx(edmx)
    assert parsed == {"Things": {"type": "Thing", "keys": ["Id"], "properties": [
        ["Id", "Edm.String", None, None, None, False],
        ["Qty", "Edm.Decimal", 32, None, None, False],
        ["Kind", "Microsoft.Dynamics.DataEntities.ThingKind", None, None, None, True],
        # The X++ type, written as an element (as F&O does) or as the attribute shorthand.
        ["On", "Edm.DateTimeOffset", None, None, "Date", False],
        ["At", "Edm.DateTimeOffset", None, None, "UtcDateTime", False],
    ]}}
    # Scale="Variable": X++ reals are NUMERIC(32,16) in the database, the widest a value can be.
    assert FieldInfo("Qty", "Edm.Decimal", "decimal", 32, None).arrow_type == pa.decimal128(32, 16)
    assert field_kind("Edm.DateTimeOffset", False, "UtcDateTime") == "instant"
    assert field_kind("Edm.DateTimeOffset", False, "Date") == "date"
    assert field_kind("Edm.Int32", False, "Int") == "int32"
