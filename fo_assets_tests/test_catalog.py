import re

import pytest

from fo_assets.catalog import (
    BY_ENTITY_SET,
    CATALOG,
    bindings_for_event,
    children_of,
    snake_case,
    spec_for,
)

REFERENCE_KEYS = {
    "VendorsV2": ("dataAreaId", "VendorAccountNumber"),
    "CustomersV3": ("dataAreaId", "CustomerAccount"),
    "ProductsV2": ("ProductNumber",),
    "ReleasedProductsV2": ("dataAreaId", "ItemNumber"),
    "MainAccounts": ("ChartOfAccounts", "MainAccountId"),
    "VendorInvoiceHeaders": ("dataAreaId", "HeaderReference"),
    "VendorInvoiceLines": ("dataAreaId", "HeaderReference", "InvoiceLineNumber"),
    "PurchaseOrderHeadersV2": ("dataAreaId", "PurchaseOrderNumber"),
    "PurchaseOrderLinesV2": ("dataAreaId", "PurchaseOrderNumber", "LineNumber"),
    "GeneralJournalAccountEntries": ("DataArea", "GeneralJournalAccountEntryRecId"),
}


def test_catalog_covers_the_reference_entities_with_their_keys():
    assert {spec.entity_set: spec.key_columns for spec in CATALOG} == REFERENCE_KEYS


def test_names_are_unique_and_valid():
    tables = [spec.table for spec in CATALOG]
    assert len(set(tables)) == len(tables) == len(BY_ENTITY_SET)
    for spec in CATALOG:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", spec.table), spec.table
        assert spec.asset_key_path == ["fo", spec.table]
        assert len(set(spec.key_columns)) == len(spec.key_columns)
        assert not set(spec.excluded_fields) & set(spec.key_columns), "a key cannot be excluded"
        assert spec.description and spec.group in {"master_data", "finance", "procurement"}


@pytest.mark.parametrize(
    "name, table",
    [("VendorsV2", "vendors_v2"), ("GeneralJournalAccountEntries", "general_journal_account_entries"),
     ("PurchaseOrderLinesV2", "purchase_order_lines_v2"), ("MainAccounts", "main_accounts")],
)
def test_snake_case(name, table):
    assert snake_case(name) == table


def test_lines_follow_existing_headers_on_shared_keys():
    for spec in CATALOG:
        if spec.parent:
            parent = spec_for(spec.parent)
            assert spec.mode == "lines" and spec.window_field is None
            assert parent.window_field, "lines follow a windowed header"
            assert set(spec.parent_keys) <= set(spec.keys) and set(spec.parent_keys) <= set(parent.keys)
            assert spec in children_of(parent.entity_set)


def test_every_event_maps_to_existing_entities():
    events = {b.business_event_id for spec in CATALOG for b in spec.events}
    assert events == {"PurchaseOrderConfirmedBusinessEvent", "VendorInvoicePostedBusinessEvent"}
    for event in events:
        for spec, binding in bindings_for_event(event):
            assert spec.entity_set in BY_ENTITY_SET and binding.lookup
            assert spec.company_field, "events carry a legal entity, so they name company-scoped records"


def test_unknown_entity_names_the_known_ones():
    with pytest.raises(KeyError, match="unknown entity set 'VendorV2'.*VendorsV2"):
        spec_for("VendorV2")
