"""Field definitions of the sandbox entities: names, X++ types, keys, enums, precision.

Each entity is declared once here; the generator fills exactly these fields, the server renders them in
this order, and ``$metadata`` / ``/Metadata/PublicEntities`` describe them. Keys and the company field
come from ``fo_assets.catalog`` so the sandbox cannot drift from the connector's idea of identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

from fo_assets.catalog import BY_ENTITY_SET, CATALOG

XppType = Literal["String", "Date", "UtcDateTime", "Enum", "Real", "Int64", "Int"]
NAMESPACE = "Microsoft.Dynamics.DataEntities"

ENUMS: dict[str, tuple[str, ...]] = {
    "NoYes": ("No", "Yes"),
    "CustVendorBlocked": ("No", "Invoice", "All", "Payment", "Requisition", "Never"),
    "PurchStatus": ("None", "Backorder", "Received", "Invoiced", "Canceled"),
    "VersioningDocumentState": (
        "Draft",
        "InReview",
        "Rejected",
        "Approved",
        "InExternalReview",
        "Confirmed",
        "Finalized",
    ),
    "EcoResProductType": ("Item", "Service"),
    "EcoResProductSubtype": ("Product", "ProductMaster"),
    "DirPartyBaseType": ("Organization", "Person"),
    "DimensionLedgerAccountType": (
        "ProfitAndLoss",
        "Revenue",
        "Expense",
        "BalanceSheet",
        "Asset",
        "Liability",
        "Equity",
        "Total",
    ),
    "LedgerPostingType": ("None", "LedgerJournal", "VendBalance", "PurchConsump", "CustBalance", "SalesRevenue", "Tax"),
    "CurrentOperationsTax": ("Current", "Operations", "Tax"),
    "LedgerTransType": ("None", "Sales", "Purch", "Cust", "Vend", "Bank", "Tax"),
}


@dataclass(frozen=True)
class FieldDef:
    name: str
    xpp: XppType
    is_key: bool = False
    enum: str | None = None
    precision: int | None = None
    scale: int | None = None
    max_length: int | None = None
    mandatory: bool = False

    @property
    def edm_type(self) -> str:
        if self.xpp == "Enum":
            return f"{NAMESPACE}.{self.enum}"
        return {
            "String": "Edm.String",
            "Date": "Edm.DateTimeOffset",  # F&O exposes X++ dates as DateTimeOffset at noon UTC
            "UtcDateTime": "Edm.DateTimeOffset",
            "Real": "Edm.Decimal",
            "Int64": "Edm.Int64",
            "Int": "Edm.Int32",
        }[self.xpp]

    @property
    def storage(self) -> Literal["str", "int", "dec", "time"]:
        """How the column is held: object array of str, int64, int64 scaled by 10**scale, epoch seconds."""
        if self.xpp in ("String", "Enum"):
            return "str"
        if self.xpp == "Real":
            return "dec"
        if self.xpp in ("Date", "UtcDateTime"):
            return "time"
        return "int"


@dataclass(frozen=True)
class EntitySchema:
    entity_set: str
    public_name: str  # the singular public entity name (VendorV2 for VendorsV2)
    company_field: str | None
    fields: tuple[FieldDef, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.is_key)

    @property
    def by_name(self) -> dict[str, FieldDef]:
        return {f.name: f for f in self.fields}

    @property
    def type_name(self) -> str:
        return f"{NAMESPACE}.{self.public_name}"


def _parse(code: str, name: str) -> FieldDef:
    """Compact declarations: S[len] String, D Date, T UtcDateTime, E:Enum, R Real, L Int64, I Int."""
    if code.startswith("E:"):
        return FieldDef(name, "Enum", enum=code[2:])
    if code.startswith("S"):
        return FieldDef(name, "String", max_length=int(code[1:] or 60))
    if code == "R":
        return FieldDef(name, "Real", precision=32, scale=6)
    return FieldDef(name, {"D": "Date", "T": "UtcDateTime", "L": "Int64", "I": "Int"}[code])


_PUBLIC_NAMES = {
    "VendorsV2": "VendorV2",
    "CustomersV3": "CustomerV3",
    "ProductsV2": "ProductV2",
    "ReleasedProductsV2": "ReleasedProductV2",
    "MainAccounts": "MainAccount",
    "VendorInvoiceHeaders": "VendorInvoiceHeader",
    "VendorInvoiceLines": "VendorInvoiceLine",
    "PurchaseOrderHeadersV2": "PurchaseOrderHeaderV2",
    "PurchaseOrderLinesV2": "PurchaseOrderLineV2",
    "GeneralJournalAccountEntries": "GeneralJournalAccountEntry",
}

# Fields in served order after the company field. Key fields listed first; their types matter.
_FIELDS: dict[str, str] = {
    "VendorsV2": """VendorAccountNumber S20, VendorOrganizationName S100, VendorPartyType E:DirPartyBaseType,
        VendorGroupId S10, CurrencyCode S3, OnHoldStatus E:CustVendorBlocked, CreditLimit R,
        DefaultLedgerDimensionDisplayValue S500, PaymentTermsName S10, AddressCountryRegionId S10,
        AddressCity S60, PrimaryEmailAddress S255, TaxExemptNumber S20, IsOneTimeVendor E:NoYes""",
    "CustomersV3": """CustomerAccount S20, OrganizationName S100, PartyType E:DirPartyBaseType, CustomerGroupId S10,
        SalesCurrencyCode S3, CreditLimit R, PaymentTerms S10, OnHoldStatus E:CustVendorBlocked,
        AddressCountryRegionId S10, AddressCity S60, PrimaryContactEmail S255, PrimaryContactPhone S255,
        DefaultDimensionDisplayValue S500, CreditLimitIsMandatory E:NoYes""",
    "ProductsV2": """ProductNumber S20, ProductName S60, ProductSearchName S20, ProductType E:EcoResProductType,
        ProductSubtype E:EcoResProductSubtype, ProductDescription S1000, ProductDimensionGroupName S10,
        StorageDimensionGroupName S10""",
    "ReleasedProductsV2": """ItemNumber S20, ProductNumber S20, SearchName S20, ItemModelGroupId S10,
        ProductGroupId S10, PurchaseUnitSymbol S10, InventoryUnitSymbol S10, PurchasePrice R, SalesPrice R,
        IsPurchasePriceAutomaticallyUpdated E:NoYes, ProductType E:EcoResProductType""",
    "MainAccounts": """ChartOfAccounts S60, MainAccountId S20, Name S60, MainAccountType E:DimensionLedgerAccountType,
        MainAccountCategory S30, PostingType E:LedgerPostingType, IsSuspended E:NoYes, ActiveFrom D, ActiveTo D,
        MainAccountRecId L""",
    "VendorInvoiceHeaders": """HeaderReference S20, InvoiceNumber S20, VendorAccount S20, InvoiceAccount S20,
        InvoiceDate D, DueDate D, DocumentDate D, CurrencyCode S3, InvoiceDescription S60,
        PurchaseOrderNumber S20, InvoiceAmount R, PaymentTermsName S10, IsOnHold E:NoYes, PostedDateTime T""",
    "VendorInvoiceLines": """HeaderReference S20, InvoiceLineNumber R, ItemNumber S20, ProcurementCategoryName S60,
        LineDescription S1000, Quantity R, UnitPrice R, LineAmount R, PurchaseUnitSymbol S10""",
    "PurchaseOrderHeadersV2": """PurchaseOrderNumber S20, OrderVendorAccountNumber S20, InvoiceVendorAccountNumber S20,
        PurchaseOrderName S100, PurchaseOrderStatus E:PurchStatus, DocumentApprovalStatus E:VersioningDocumentState,
        CurrencyCode S3, AccountingDate D, RequestedDeliveryDate D, ConfirmedDeliveryDate D,
        DefaultLedgerDimensionDisplayValue S500, PaymentTermsName S10, DeliveryAddressCountryRegionId S10,
        VendorOrderReference S20, TotalDiscountPercentage R, LastConfirmationDateTime T""",
    "PurchaseOrderLinesV2": """PurchaseOrderNumber S20, LineNumber L, ItemNumber S20, LineDescription S1000,
        OrderedPurchaseQuantity R, PurchasePrice R, LineAmount R, PurchaseOrderLineStatus E:PurchStatus,
        RequestedDeliveryDate D, PurchaseUnitSymbol S10, ProcurementProductCategoryName S60""",
    "GeneralJournalAccountEntries": """GeneralJournalAccountEntryRecId L, JournalNumber S20, Voucher S20,
        AccountingDate D, PostingLayer E:CurrentOperationsTax, LedgerAccount S500, AccountDisplayValue S500,
        TransactionCurrencyCode S3, TransactionCurrencyAmount R, AccountingCurrencyAmount R,
        ReportingCurrencyAmount R, Description S60, PostingType E:LedgerPostingType,
        JournalCategory E:LedgerTransType, IsCredit E:NoYes, DocumentDate D, DocumentNumber S20""",
}

_WIDE_TARGET = {"VendorsV2": 290, "CustomersV3": 310}
_WIDE_PREFIXES = (
    "Address",
    "Payment",
    "Tax",
    "Delivery",
    "Invoice",
    "Purchase",
    "Sales",
    "Bank",
    "Contact",
    "Credit",
    "Discount",
    "Freight",
    "Fiscal",
    "Language",
    "Warehouse",
    "Commission",
    "Rebate",
    "Withholding",
    "Electronic",
    "Foreign",
    "Intrastat",
    "Statistics",
    "Collection",
    "Settlement",
)
_WIDE_SUFFIXES = {
    "Code": "S10",
    "Name": "S60",
    "Description": "S255",
    "Id": "S20",
    "Group": "S10",
    "Date": "D",
    "Amount": "R",
    "Percentage": "R",
    "Method": "S10",
    "Required": "E:NoYes",
    "Enabled": "E:NoYes",
    "Number": "S20",
    "Days": "I",
    "Limit": "R",
    "Reference": "S30",
    "ChangedDateTime": "T",
    "Sequence": "L",
}


def _wide_fields(entity_set: str, existing: set[str]) -> list[FieldDef]:
    extra: list[FieldDef] = []
    want = _WIDE_TARGET.get(entity_set, 0) - len(existing)
    for prefix in _WIDE_PREFIXES:
        for suffix, code in _WIDE_SUFFIXES.items():
            name = prefix + suffix
            if len(extra) < want and name not in existing:
                extra.append(_parse(code, name))
    return extra


@cache
def entity_schema(entity_set: str, wide: bool = False) -> EntitySchema:
    spec = BY_ENTITY_SET[entity_set]
    keys = set(spec.keys)
    fields: list[FieldDef] = []
    if spec.company_field:
        fields.append(FieldDef(spec.company_field, "String", is_key=True, max_length=4, mandatory=True))
    for item in _FIELDS[entity_set].split(","):
        name, code = item.split()
        f = _parse(code, name)
        if name in keys:
            f = FieldDef(f.name, f.xpp, True, f.enum, f.precision, f.scale, f.max_length, True)
        fields.append(f)
    missing = keys - {f.name for f in fields}
    if missing:
        raise RuntimeError(f"sandbox schema of {entity_set} lacks catalog key fields {sorted(missing)}")
    if wide:
        fields += _wide_fields(entity_set, {f.name for f in fields})
    return EntitySchema(entity_set, _PUBLIC_NAMES[entity_set], spec.company_field, tuple(fields))


def all_schemas(wide: bool = False) -> tuple[EntitySchema, ...]:
    return tuple(entity_schema(spec.entity_set, wide) for spec in CATALOG)
