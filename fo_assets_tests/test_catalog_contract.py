"""The contract between the catalog and a real F&O tenant: every fact the catalog states about an entity
(entity set, key in order, company, window, modified-time, status, join, inherited, lookup, event,
dimension, personal and excluded fields, with the types the code relies on) is what a real tenant's
``$metadata`` says (fo_assets/sandbox/real_tenant/entities.json, see PROVENANCE.md beside it)."""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from importlib import resources

import pytest

from fo_assets.catalog import STANDARD, CompanyLookup, DimensionField, EntitySpec, EventBinding, ParentLink
from fo_assets.dynamics.contract import mismatches
from fo_assets.dynamics.schema import EntitySchema, FieldInfo, field_kind, unknown_entity_set

ENUM_PREFIX = "Microsoft.Dynamics.DataEntities."


@cache
def real_tenant() -> dict:
    return json.loads(resources.files("fo_assets").joinpath("sandbox/real_tenant/entities.json").read_text())


def schema_of(entity_set: str) -> EntitySchema:
    entities = real_tenant()["entities"]
    if entity_set not in entities:
        raise unknown_entity_set(entity_set, entities)
    described = entities[entity_set]
    fields = []
    for name, edm_type, _nullable, *ax_type in described["properties"]:
        is_enum = edm_type.startswith(ENUM_PREFIX) and edm_type[len(ENUM_PREFIX):] in real_tenant()["enums"]
        fields.append(FieldInfo(name, edm_type, field_kind(edm_type, is_enum, ax_type[0] if ax_type else None)))
    return EntitySchema(entity_set, described["type"], tuple(described["keys"]), tuple(fields))


@pytest.mark.parametrize("spec", STANDARD.specs, ids=lambda spec: spec.entity_set)
def test_every_standard_entity_agrees_with_the_real_tenant(spec: EntitySpec) -> None:
    assert mismatches(spec, schema_of, strict=True) == []


def test_the_entity_sets_a_real_tenant_does_not_expose_are_not_read() -> None:
    missing = set(real_tenant()["_about"]["missing_sets"])
    assert "GeneralJournalAccountEntries" in missing
    assert not missing & {spec.entity_set for spec in STANDARD}


def test_finished_states_are_symbols_of_the_status_enum() -> None:
    for spec in STANDARD:
        if spec.open_states:
            enum = schema_of(spec.entity_set).get(spec.open_states.field).edm_type.removeprefix(ENUM_PREFIX)
            assert set(spec.open_states.finished) <= set(real_tenant()["enums"][enum]), spec.entity_set


def _changed(name: str, **changes) -> EntitySpec:
    return dataclasses.replace(STANDARD.spec_for(name), **changes)


GL_LINES = STANDARD.spec_for("GeneralJournalAccountEntryBiEntities")
PO_LINES = STANDARD.spec_for("PurchaseOrderLinesV2")

# Each fact changed to disagree with the real tenant, and the words the mismatch must contain.
DISAGREEMENTS = [
    ("entity set", _changed("VendorsV2", entity_set="GeneralJournalAccountEntries"), "not in the tenant"),
    ("key order", _changed("VendorsV2", keys=("VendorAccountNumber", "dataAreaId")), "the key is"),
    ("key field", _changed("MainAccounts", keys=("ChartOfAccounts", "MainAccountRecId")), "the key is"),
    ("company field", _changed("Ledgers", keys=("LegalEntityId",), company_field="dataAreaId"), "company field"),
    ("window field", _changed("PurchaseOrderHeadersV2", window_field="OrderDate"), "window field 'OrderDate'"),
    ("window type", _changed("PurchaseOrderHeadersV2", window_field="PurchaseOrderName"), "not date or instant"),
    ("modified time", _changed("VendInvoiceJourBiEntities", changed_field="ModifiedDateTime"), "ModifiedDateTime"),
    ("status field", _changed("PurchaseOrderHeadersV2", open_states=dataclasses.replace(
        STANDARD.spec_for("PurchaseOrderHeadersV2").open_states, field="PurchaseOrderName")), "not enum"),
    ("join field", dataclasses.replace(GL_LINES, parent=dataclasses.replace(
        GL_LINES.parent, join=(("GeneralJournalAccountEntry", "SourceKey"),))), "join field"),
    ("join type", dataclasses.replace(PO_LINES, parent=dataclasses.replace(
        PO_LINES.parent, join=(("dataAreaId", "dataAreaId"), ("LineNumber", "PurchaseOrderNumber")))),
     "compares different types"),
    ("inherited field", dataclasses.replace(GL_LINES, parent=dataclasses.replace(
        GL_LINES.parent, inherit=("dataAreaId", "PostingDate"))), "inherited header field"),
    ("company lookup", _changed("GeneralJournalEntryBiEntities", company_lookup=CompanyLookup(
        "Ledger", "Ledgers", "RecId", "LegalEntityId")), "company lookup key"),
    ("derived collision", _changed("GeneralJournalEntryBiEntities", company_field="SubledgerVoucherDataAreaId"),
     "collides"),
    ("event lookup", _changed("VendInvoiceJourBiEntities", events=(EventBinding(
        "VendorInvoicePostedBusinessEvent", ((("InvoiceId", "InvoiceNumber"),),)),)), "lookup field 'InvoiceNumber'"),
    ("dimension field", _changed("VendorsV2", dimensions=(DimensionField("DefaultDimensionDisplayValue", "default"),)),
     "dimension field"),
    ("excluded field", _changed("CustomersV3", excluded_fields=("PrimaryContactEMail",)), "excluded field"),
    ("personal field", _changed("VendorsV2", personal_fields=("PersonBirthDate",)), "personal field"),
    ("parent entity", dataclasses.replace(PO_LINES, parent=ParentLink(
        "PurchaseOrderHeaders", PO_LINES.parent.join)), "header entity"),
]


@pytest.mark.parametrize("fact, spec, words", DISAGREEMENTS, ids=[d[0] for d in DISAGREEMENTS])
def test_a_fact_changed_to_disagree_with_the_real_tenant_is_reported(fact: str, spec: EntitySpec, words: str) -> None:
    found = mismatches(spec, schema_of, strict=True)
    assert any(words in problem for problem in found), found
