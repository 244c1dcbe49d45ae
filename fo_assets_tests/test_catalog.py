"""The catalog's own rules, and a code location's catalog file (entities added, fields left out, personal
data opted into). Agreement with a real tenant is test_catalog_contract.py's."""

import re
from pathlib import Path

import pytest

from fo_assets.catalog import STANDARD, CatalogError, snake_case
from fo_assets.catalog.custom import load_catalog
from fo_assets.settings import ConfigError, load_settings


def test_names_are_unique_and_valid():
    tables = [spec.table for spec in STANDARD]
    assert len(set(tables)) == len(tables) == len(STANDARD)
    for spec in STANDARD:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", spec.table), spec.table
        assert spec.asset_key_path == ["fo", spec.table]
        assert spec.description and spec.group in {"master_data", "finance", "procurement"}


@pytest.mark.parametrize(
    "name, table",
    [("VendorsV2", "vendors_v2"), ("GeneralJournalEntryBiEntities", "general_journal_entry_bi_entities"),
     ("PurchaseOrderLinesV2", "purchase_order_lines_v2"), ("MainAccounts", "main_accounts")],
)
def test_snake_case(name, table):
    assert snake_case(name) == table


def test_read_modes_follow_what_each_entity_really_holds():
    modes = {spec.entity_set: STANDARD.mode_of(spec) for spec in STANDARD}
    assert modes == {
        "VendorsV2": "snapshot", "CustomersV3": "snapshot", "ProductsV2": "snapshot",
        "ReleasedProductsV2": "snapshot", "MainAccounts": "snapshot", "Ledgers": "snapshot",
        "GeneralJournalEntryBiEntities": "window", "GeneralJournalAccountEntryBiEntities": "lines",
        "VendInvoiceJourBiEntities": "window", "VendInvoiceTransBiEntities": "window",
        # Pending invoices leave these entities when posted: read whole, not by a date they may not have.
        "VendorInvoiceHeaders": "snapshot", "VendorInvoiceLines": "snapshot",
        "PurchaseOrderHeadersV2": "window", "PurchaseOrderLinesV2": "lines",
    }
    assert STANDARD.children_of("PurchaseOrderHeadersV2") == (STANDARD.spec_for("PurchaseOrderLinesV2"),)


def test_gl_lines_land_with_their_vouchers_company_and_date():
    lines = STANDARD.spec_for("GeneralJournalAccountEntryBiEntities")
    assert lines.company_field == "dataAreaId" and lines.company_filter_field is None
    assert lines.derived_columns == ("dataAreaId", "AccountingDate")
    assert lines.parent_scope_columns == ("dataAreaId", "GeneralJournalEntry")
    vouchers = STANDARD.spec_for("GeneralJournalEntryBiEntities")
    assert vouchers.derived_columns == ("dataAreaId",) and vouchers.company_filter_field == "Ledger"


def test_events_map_to_existing_entities():
    events = {b.business_event_id for spec in STANDARD for b in spec.events}
    assert events == {"PurchaseOrderConfirmedBusinessEvent", "VendorInvoicePostedBusinessEvent"}
    (posted, binding), = STANDARD.bindings_for_event("VendorInvoicePostedBusinessEvent")
    assert posted.entity_set == "VendInvoiceJourBiEntities"
    assert [dict(n) for n in binding.namings] == [
        {"InvoiceAccount": "InvoiceAccount", "InvoiceId": "InvoiceId"},
        {"VendorAccount": "OrderAccount", "InvoiceNumber": "InvoiceId"},
    ]


def test_unknown_entity_names_the_known_ones():
    with pytest.raises(KeyError, match="unknown entity set 'VendorV2'.*VendorsV2"):
        STANDARD.spec_for("VendorV2")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "entities.toml"
    path.write_text(text)
    return path


def test_a_catalog_file_adds_entities_excludes_fields_and_opts_into_personal_data(tmp_path):
    catalog = load_catalog(write(tmp_path, """
[[entities]]
entity_set = "ContosoProjectBudgets"
keys = ["dataAreaId", "ProjectId", "BudgetLineId"]
description = "Project budget lines, read by their last change."
window_field = "ModifiedDateTime1"
excluded_fields = ["ApproverPersonalNote"]

[[entities]]
entity_set = "ExchangeRates"
keys = ["RateTypeName", "FromCurrency", "ToCurrency", "StartDate"]
company_field = ""
group = "finance"
description = "Exchange rates."

[exclude]
VendorsV2 = ["Notes"]

[personal_data]
CustomersV3 = ["PrimaryContactEmail"]
"""))
    budgets = catalog.spec_for("ContosoProjectBudgets")
    assert budgets.group == "extensions" and budgets.table == "contoso_project_budgets"
    assert catalog.mode_of(budgets) == "window" and budgets.excluded_fields == ("ApproverPersonalNote",)
    assert catalog.spec_for("ExchangeRates").company_field is None
    assert "Notes" in catalog.spec_for("VendorsV2").excluded_fields
    customers = catalog.spec_for("CustomersV3")
    assert "PrimaryContactEmail" not in customers.personal_fields and "PrimaryContactPhone" in customers.personal_fields
    assert len(catalog) == len(STANDARD) + 2


@pytest.mark.parametrize("text, message", [
    ("[[entities]]\nentity_set = 'X'\nkeys = ['Id']\n", "description is required"),
    ("[[entities]]\nentity_set = 'VendorsV2'\nkeys = ['Id']\ndescription = 'd'\n", "is a standard entity"),
    ("[[entities]]\nentity_set = 'X'\nkeys = ['Id']\ndescription = 'd'\ngroup = 'fun'\n", "group 'fun'"),
    ("[[entities]]\nentity_set = 'X'\nkeys = ['Id']\ndescription = 'd'\n", "company field 'dataAreaId' is not part of"),
    ("[[entities]]\nentity_set = 'X'\nkeys = ['Id']\ndescription = 'd'\ncompany_field = ''\nwidth = 3\n",
     "unknown settings"),
    ("[exclude]\nVendorsV3 = ['Notes']\n", "VendorsV3 is not in the catalog"),
    ("[exclude]\nVendorsV2 = ['VendorAccountNumber']\n", "cannot be excluded"),
    ("[personal_data]\nCustomersV3 = ['CreditLimit']\n", "no personal fields ['CreditLimit']"),
    ("[entitys]\n", "unknown sections"),
    ("[[entities]\n", "not valid TOML"),
])
def test_a_wrong_catalog_file_is_refused_naming_the_problem(tmp_path, text, message):
    with pytest.raises(CatalogError, match=re.escape(message)):
        load_catalog(write(tmp_path, text))


def test_the_catalog_file_is_named_relative_to_the_configuration_file(tmp_path):
    (tmp_path / "location").mkdir()
    (tmp_path / "location" / "entities.toml").write_text(
        "[[entities]]\nentity_set = 'ExchangeRates'\nkeys = ['RateTypeName', 'FromCurrency', 'ToCurrency', "
        "'StartDate']\ncompany_field = ''\ndescription = 'Exchange rates.'\n")
    config = tmp_path / "location" / "fo.env"
    config.write_text("FO_CATALOG_FILE=entities.toml\n")
    assert "ExchangeRates" in load_settings({}, config_file=config).catalog
    config.write_text("FO_CATALOG_FILE=missing.toml\n")
    with pytest.raises(ConfigError, match="FO_CATALOG_FILE: cannot read the catalog file .*missing.toml"):
        load_settings({}, config_file=config)
