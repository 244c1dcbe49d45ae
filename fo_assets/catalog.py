"""The entity catalog: every F&O entity fo-assets lands, and everything the code needs to know about it.

This module is the single source of truth. The extraction engine, the sinks, the Dagster assets, the
sensor and the checks all read these specs; nothing else hard-codes an entity set, a key or a field.

Adding an entity (for example a customer's extension entity) is one more ``EntitySpec`` in ``CATALOG``.
An extension that carries a modified timestamp (often seen as ``ModifiedDateTime1``) can use it as the
``window_field`` so daily runs read only what changed that day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

DimensionFormat = Literal["ledger", "default"]


@dataclass(frozen=True)
class DimensionField:
    """A financial-dimension display string to split into one column per dimension.

    ``format`` selects the configured segment order: ``ledger`` starts with the main account
    (``LedgerAccount``, ``DefaultLedgerDimensionDisplayValue``), ``default`` has no main account.
    Where ``account_type_field`` is set and that row's value is not ``Ledger`` the display value is a
    counterparty account (vendor, customer, bank), which is kept whole and not split.
    """

    field: str
    format: DimensionFormat = "ledger"
    account_type_field: str | None = None


@dataclass(frozen=True)
class EventBinding:
    """How a Business Event names records of an entity.

    ``lookup`` maps a payload field to the entity field it equals; the targeted pull filters on all of
    them (they need not be the key: a vendor invoice event names vendor and invoice number, the entity's
    key is ``HeaderReference``). The event's legal entity selects the company.
    """

    business_event_id: str
    lookup: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class EntitySpec:
    entity_set: str
    keys: tuple[str, ...]
    group: str
    description: str
    company_field: str | None = "dataAreaId"
    window_field: str | None = None
    # Line entities: the header entity set, and the fields (same name on both sides) that join a line
    # to its header. Lines are read for the headers a run read, never by a date of their own.
    parent: str | None = None
    parent_keys: tuple[str, ...] = ()
    # None means every public field of the entity in the tenant (new tenant fields become new columns).
    fields: tuple[str, ...] | None = None
    excluded_fields: tuple[str, ...] = ()
    # None: server-driven paging. A number: client-driven $top/$skip with $orderby over the key, for
    # wide entities whose 10,000-row server pages would be tens of MB of JSON each.
    page_size: int | None = None
    dimensions: tuple[DimensionField, ...] = ()
    events: tuple[EventBinding, ...] = ()

    @property
    def table(self) -> str:
        return snake_case(self.entity_set)

    @property
    def asset_key_path(self) -> list[str]:
        return ["fo", self.table]

    @property
    def key_columns(self) -> tuple[str, ...]:
        """Row identity in the landed table: the company field (where company-scoped) plus the keys."""
        return ((self.company_field,) if self.company_field else ()) + self.keys

    @property
    def mode(self) -> Literal["window", "snapshot", "lines"]:
        if self.parent:
            return "lines"
        return "window" if self.window_field else "snapshot"


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(name: str) -> str:
    """``VendorsV2`` -> ``vendors_v2``, ``GeneralJournalAccountEntries`` -> ``general_journal_account_entries``."""
    return _CAMEL.sub("_", name).lower()


CATALOG: tuple[EntitySpec, ...] = (
    EntitySpec(
        entity_set="VendorsV2",
        keys=("VendorAccountNumber",),
        group="master_data",
        description="Vendors (suppliers) of each legal entity: names, groups, currency, hold status and "
        "credit limit. Read whole every day; a vendor removed in F&O is flagged deleted.",
        page_size=2_000,
        dimensions=(DimensionField("DefaultLedgerDimensionDisplayValue", "default"),),
    ),
    EntitySpec(
        entity_set="CustomersV3",
        keys=("CustomerAccount",),
        group="master_data",
        description="Customers of each legal entity: names, groups, currency and credit terms. Personal "
        "contact details are not copied.",
        page_size=2_000,
        excluded_fields=("PrimaryContactEmail", "PrimaryContactPhone"),
    ),
    EntitySpec(
        entity_set="ProductsV2",
        keys=("ProductNumber",),
        company_field=None,
        group="master_data",
        description="The shared product master: every product defined once for all legal entities.",
    ),
    EntitySpec(
        entity_set="ReleasedProductsV2",
        keys=("ItemNumber",),
        group="master_data",
        description="Products released to each legal entity, with that company's item settings.",
    ),
    EntitySpec(
        entity_set="MainAccounts",
        keys=("ChartOfAccounts", "MainAccountId"),
        company_field=None,
        group="finance",
        description="The chart of accounts: every main account with its type, category and active dates.",
    ),
    EntitySpec(
        entity_set="VendorInvoiceHeaders",
        keys=("HeaderReference",),
        window_field="InvoiceDate",
        group="procurement",
        description="Vendor invoices by invoice date: vendor, invoice number, amounts and currency.",
        events=(
            EventBinding(
                "VendorInvoicePostedBusinessEvent",
                (("VendorAccount", "VendorAccount"), ("InvoiceNumber", "InvoiceNumber")),
            ),
        ),
    ),
    EntitySpec(
        entity_set="VendorInvoiceLines",
        keys=("HeaderReference", "InvoiceLineNumber"),
        parent="VendorInvoiceHeaders",
        parent_keys=("HeaderReference",),
        group="procurement",
        description="The lines of each vendor invoice: item or procurement category, quantity, price "
        "and line amount. Loaded together with their invoice headers.",
    ),
    EntitySpec(
        entity_set="PurchaseOrderHeadersV2",
        keys=("PurchaseOrderNumber",),
        window_field="AccountingDate",
        group="procurement",
        description="Purchase orders by accounting date: vendor, status, approval, currency and the "
        "default financial dimensions.",
        dimensions=(DimensionField("DefaultLedgerDimensionDisplayValue", "default"),),
        events=(
            EventBinding("PurchaseOrderConfirmedBusinessEvent", (("PurchaseOrderNumber", "PurchaseOrderNumber"),)),
        ),
    ),
    EntitySpec(
        entity_set="PurchaseOrderLinesV2",
        keys=("PurchaseOrderNumber", "LineNumber"),
        parent="PurchaseOrderHeadersV2",
        parent_keys=("PurchaseOrderNumber",),
        group="procurement",
        description="The lines of each purchase order: item, quantity, price and delivery date. Loaded "
        "together with their purchase order headers.",
    ),
    EntitySpec(
        entity_set="GeneralJournalAccountEntries",
        keys=("GeneralJournalAccountEntryRecId",),
        # This entity names its company context DataArea, not dataAreaId.
        company_field="DataArea",
        window_field="AccountingDate",
        group="finance",
        description="General ledger postings by accounting date: voucher, main account and dimensions, "
        "amounts in transaction, accounting and reporting currency. The basis of the trial balance.",
        dimensions=(DimensionField("LedgerAccount", "ledger"),),
    ),
)

BY_ENTITY_SET: dict[str, EntitySpec] = {spec.entity_set: spec for spec in CATALOG}
BY_TABLE: dict[str, EntitySpec] = {spec.table: spec for spec in CATALOG}


def spec_for(entity_set: str) -> EntitySpec:
    try:
        return BY_ENTITY_SET[entity_set]
    except KeyError:
        known = ", ".join(sorted(BY_ENTITY_SET))
        raise KeyError(f"unknown entity set {entity_set!r}: the catalog has {known}") from None


def children_of(entity_set: str) -> tuple[EntitySpec, ...]:
    return tuple(spec for spec in CATALOG if spec.parent == entity_set)


def bindings_for_event(business_event_id: str) -> list[tuple[EntitySpec, EventBinding]]:
    return [
        (spec, binding)
        for spec in CATALOG
        for binding in spec.events
        if binding.business_event_id == business_event_id
    ]
