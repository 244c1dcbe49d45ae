"""The standard entities fo-assets lands, as a real F&O tenant exposes them.

Every entity set, key, company field, window field, join field, event lookup field, dimension field and
excluded field here is checked by the contract test against a real tenant's ``$metadata``
(fo_assets/sandbox/real_tenant/entities.json); docs/fo-odata.md says what each entity really holds.
"""

from __future__ import annotations

from fo_assets.catalog.spec import (
    CompanyLookup,
    DimensionField,
    EntitySpec,
    EventBinding,
    OpenStates,
    ParentLink,
)

# Personal data of sole-trader vendors and person customers: names, birth and family details, personal
# contact channels, street addresses and government ids of persons. Organisation names, cities and
# countries stay (reporting needs them); so do RecIds that merely point at contact records.
_PERSON = (
    "PersonAnniversaryDay", "PersonAnniversaryMonth", "PersonAnniversaryYear", "PersonChildrenNames",
    "PersonFirstName", "PersonGender", "PersonHobbies", "PersonInitials", "PersonLastName",
    "PersonLastNamePrefix", "PersonMaritalStatus", "PersonMiddleName", "PersonPhoneticFirstName",
    "PersonPhoneticLastName", "PersonPhoneticMiddleName", "PersonProfessionalSuffix", "PersonProfessionalTitle",
    "BirthCountyCode", "BirthPlace",
)
_VENDOR_PERSONAL = (
    *_PERSON,
    "PersonBirthDay", "PersonBirthMonth", "PersonBirthYear", "PersonPersonalSuffix", "PersonPersonalTitle",
    "EthnicOriginId", "Nationality",
    "PrimaryEmailAddress", "PrimaryEmailAddressDescription", "IsPrimaryEmailAddressIMEnabled",
    "PrimaryPhoneNumber", "PrimaryPhoneNumberDescription", "PrimaryPhoneNumberExtension",
    "IsPrimaryPhoneNumberMobile", "PrimaryFaxNumber", "PrimaryFaxNumberDescription", "PrimaryFaxNumberExtension",
    "PrimaryFacebook", "PrimaryFacebookDescription", "PrimaryLinkedIn", "PrimaryLinkedInDescription",
    "PrimaryTwitter", "PrimaryTwitterDescription", "PrimaryTelex", "PrimaryTelexDescription",
    "PrimaryURL", "PrimaryURLDescription",
    "AddressStreet", "AddressStreetNumber", "AddressStreetInKana", "AddressBuildingCompliment", "AddressPostBox",
    "AddressZipCode", "AddressLatitude", "AddressLongitude", "FormattedPrimaryAddress",
    "AddressBrazilianCNPJOrCPF", "BrazilianCNPJOrCPF", "BrazilianNIT", "BrazilianINSSCEI",
    "CISNationalInsuranceNumber", "CISUniqueTaxPayerReference", "UniquePopulationRegistryCode",
    "NationalRegistryNumberId", "ISNationalRegistryNumber", "PANNumber", "PANReferenceNumber",
    "RFCFederalTaxNumber", "Tax1099FederalTaxId", "ForeignerId", "FiscalCode",
)
_CUSTOMER_PERSONAL = (
    *_PERSON,
    "KnownAs",
    "PrimaryContactEmail", "PrimaryContactEmailDescription", "PrimaryContactEmailIsIM",
    "PrimaryContactPhone", "PrimaryContactPhoneDescription", "PrimaryContactPhoneExtension",
    "PrimaryContactPhoneIsMobile", "PrimaryContactFax", "PrimaryContactFaxDescription",
    "PrimaryContactFaxExtension", "PrimaryContactFacebook", "PrimaryContactFacebookDescription",
    "PrimaryContactLinkedIn", "PrimaryContactLinkedInDescription", "PrimaryContactTwitter",
    "PrimaryContactTwitterDescription", "PrimaryContactTelex", "PrimaryContactTelexDescription",
    "PrimaryContactURL", "PrimaryContactURLDescription", "ReceiptEmail",
    "AddressStreet", "AddressStreetNumber", "AddressBuildingComplement", "AddressPostbox", "AddressZipCode",
    "AddressLatitude", "AddressLongitude", "FullPrimaryAddress",
    "DeliveryAddressStreet", "DeliveryAddressStreetNumber", "DeliveryAddressBuildingComplement",
    "DeliveryAddressZipCode", "DeliveryAddressLatitude", "DeliveryAddressLongitude",
    "InvoiceAddressStreet", "InvoiceAddressStreetNumber", "InvoiceAddressBuildingComplement",
    "InvoiceAddressZipCode", "InvoiceAddressLatitude", "InvoiceAddressLongitude", "InvoiceAddress",
    "AddressBrazilianCNPJOrCPF", "BrazilianCNPJOrCPF", "BrazilianNIT", "BrazilianINSSCEI", "CURPNumber",
    "ForeignerId", "FiscalCode", "NationalRegistryNumber", "PANNumber", "PANReferenceNumber", "RFCNumber",
    "IdentificationNumber",
)

STANDARD_ENTITIES: tuple[EntitySpec, ...] = (
    EntitySpec(
        entity_set="VendorsV2",
        keys=("dataAreaId", "VendorAccountNumber"),
        group="master_data",
        description="Vendors (suppliers) of each legal entity: names, groups, currency, hold status and "
        "credit limit. Read whole every day; a vendor removed in F&O is flagged deleted. Personal data of "
        "sole-trader vendors is not copied.",
        page_size=2_000,
        personal_fields=_VENDOR_PERSONAL,
        dimensions=(DimensionField("DefaultLedgerDimensionDisplayValue", "default"),),
    ),
    EntitySpec(
        entity_set="CustomersV3",
        keys=("dataAreaId", "CustomerAccount"),
        group="master_data",
        description="Customers of each legal entity: names, groups, currency and credit terms. Read whole "
        "every day. Personal data (person names, contact channels, street addresses, personal ids) is not "
        "copied.",
        page_size=2_000,
        personal_fields=_CUSTOMER_PERSONAL,
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
        keys=("dataAreaId", "ItemNumber"),
        group="master_data",
        description="Products released to each legal entity, with that company's item settings.",
        page_size=2_000,
    ),
    EntitySpec(
        entity_set="MainAccounts",
        keys=("ChartOfAccounts", "MainAccountId"),
        company_field=None,
        group="finance",
        description="The chart of accounts: every main account with its type, category and active dates. "
        "General ledger lines point at an account by its MainAccountRecId.",
    ),
    EntitySpec(
        entity_set="Ledgers",
        keys=("LegalEntityId",),
        company_field="LegalEntityId",
        group="finance",
        description="One ledger per legal entity: its accounting and reporting currency and chart of "
        "accounts. General ledger vouchers belong to a legal entity through their ledger.",
    ),
    EntitySpec(
        entity_set="GeneralJournalEntryBiEntities",
        keys=("JournalNumber", "FiscalCalendarYear", "Ledger"),
        company_lookup=CompanyLookup("Ledger", "Ledgers", "LedgerRecId", "LegalEntityId"),
        window_field="AccountingDate",
        group="finance",
        description="General ledger vouchers by accounting date: journal, voucher, posting layer and "
        "category. Their legal entity (dataAreaId) is derived from the ledger they were posted to.",
    ),
    EntitySpec(
        entity_set="GeneralJournalAccountEntryBiEntities",
        keys=("SourceKey",),
        parent=ParentLink(
            "GeneralJournalEntryBiEntities", join=(("GeneralJournalEntry", "SourceKey"),),
            inherit=("dataAreaId", "AccountingDate"),
        ),
        group="finance",
        description="General ledger postings: main account and dimensions, amounts in transaction, "
        "accounting and reporting currency. Read with their vouchers; legal entity (dataAreaId) and "
        "AccountingDate are the voucher's. The basis of the trial balance.",
        dimensions=(DimensionField("LedgerAccount", "ledger"),),
    ),
    EntitySpec(
        entity_set="VendInvoiceJourBiEntities",
        keys=("dataAreaId", "SourceKey"),
        window_field="InvoiceDate",
        changed_field="SysModifiedDateTime",
        group="procurement",
        description="Posted vendor invoices by invoice date: vendor, invoice number, purchase order, "
        "amounts, tax and currency. Invoices changed after posting are re-read on the day they change.",
        page_size=5_000,
        personal_fields=("VendorRequestedWorkerEmail",),
        events=(
            EventBinding(
                "VendorInvoicePostedBusinessEvent",
                (
                    (("InvoiceAccount", "InvoiceAccount"), ("InvoiceId", "InvoiceId")),
                    (("VendorAccount", "OrderAccount"), ("InvoiceNumber", "InvoiceId")),
                ),
            ),
        ),
    ),
    EntitySpec(
        entity_set="VendInvoiceTransBiEntities",
        keys=("dataAreaId", "SourceKey"),
        window_field="InvoiceDate",
        changed_field="SysModifiedDateTime",
        parent=ParentLink(
            "VendInvoiceJourBiEntities",
            join=(
                ("dataAreaId", "dataAreaId"), ("PurchID", "PurchId"), ("InvoiceId", "InvoiceId"),
                ("InvoiceDate", "InvoiceDate"), ("numberSequenceGroup", "numberSequenceGroup"),
                ("InternalInvoiceId", "InternalInvoiceId"),
            ),
        ),
        group="procurement",
        description="The lines of posted vendor invoices: item, quantity, price, line amount and tax, by "
        "invoice date. The basis of spend reporting.",
        page_size=5_000,
    ),
    EntitySpec(
        entity_set="VendorInvoiceHeaders",
        keys=("dataAreaId", "HeaderReference"),
        group="procurement",
        description="Pending vendor invoices: registered but not posted yet (an invoice leaves this table "
        "when it is posted, and may have no invoice date yet). Read whole every day.",
        page_size=5_000,
        personal_fields=("VendorRequestedWorkerEmail",),
    ),
    EntitySpec(
        entity_set="VendorInvoiceLines",
        keys=("dataAreaId", "HeaderReference", "InvoiceLineNumber"),
        parent=ParentLink("VendorInvoiceHeaders", join=(("dataAreaId", "dataAreaId"),
                                                        ("HeaderReference", "HeaderReference"))),
        group="procurement",
        description="The lines of pending vendor invoices. Read whole every day with their invoices.",
        page_size=5_000,
    ),
    EntitySpec(
        entity_set="PurchaseOrderHeadersV2",
        keys=("dataAreaId", "PurchaseOrderNumber"),
        window_field="AccountingDate",
        open_states=OpenStates("PurchaseOrderStatus", ("Invoiced", "Canceled")),
        group="procurement",
        description="Purchase orders by accounting date: vendor, status, approval, currency and the "
        "default financial dimensions. Orders not yet invoiced or canceled are re-read every day, so "
        "status, approval and confirmation changes land the next day.",
        page_size=5_000,
        personal_fields=("Email",),
        dimensions=(DimensionField("DefaultLedgerDimensionDisplayValue", "default"),),
        events=(
            EventBinding("PurchaseOrderConfirmedBusinessEvent",
                         ((("PurchaseOrderNumber", "PurchaseOrderNumber"),),)),
        ),
    ),
    EntitySpec(
        entity_set="PurchaseOrderLinesV2",
        keys=("dataAreaId", "PurchaseOrderNumber", "LineNumber"),
        parent=ParentLink("PurchaseOrderHeadersV2", join=(("dataAreaId", "dataAreaId"),
                                                          ("PurchaseOrderNumber", "PurchaseOrderNumber"))),
        group="procurement",
        description="The lines of each purchase order: item, quantity, price and delivery date. Read "
        "together with their purchase order headers.",
        page_size=5_000,
    ),
)
