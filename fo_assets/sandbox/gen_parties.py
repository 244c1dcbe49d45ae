"""Vendors (VendorsV2) and customers (CustomersV3): organisations, and persons (sole traders) whose
personal fields (names, birth dates, personal e-mail, phone and home address) are filled so a test can
prove a connector never lands them."""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from . import dimensions
from .config import SandboxConfig
from .gen_common import (
    CITIES,
    Columns,
    amounts,
    full,
    ids,
    locale,
    obj,
    pick,
    rng_for,
    with_empty,
)

_FIRST = (
    "Contoso", "Fabrikam", "Litware", "Northwind", "Adventure", "Tailspin", "Wingtip",
    "Proseware", "Alpine", "Coho", "Fourth Coffee", "Lamna", "Trey", "Woodgrove",
)  # fmt: skip
_SECOND = (
    "Supplies", "Industries", "Logistics", "Electronics", "Traders", "Manufacturing", "Services",
    "Components", "Retail", "Foods",
)  # fmt: skip
_FORM = (" Ltd.", " Inc.", " GmbH", " LLC", "", " & Sons")
_GIVEN = ("Anna", "Ben", "Chloé", "David", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kai", "Lena")
_FAMILY = ("Meyer", "Novak", "O'Neil", "Patel", "Quinn", "Rossi", "Schmidt", "Tanaka", "Umar", "Varga")
_STREETS = ("Main Street", "Birch Lane", "Station Road", "Hauptstraße", "Mill Way", "Church Row")
_ISO = {"USA": "US", "DEU": "DE", "GBR": "GB"}
# Keys that break naive URL building: a leading space and an apostrophe (both seen in real tenants); and a
# key with a "*", which F&O's eq reads as a wildcard that cannot be escaped: 'ACME*1' also finds ACME-TOOLS-1.
SPECIAL_VENDORS = (
    (" RFI-TEST-001", "RFI test vendor"),
    ("O'Brien Supplies", "O'Brien Supplies Ltd."),
    ("ACME*1", "Acme Star One Ltd."),
    ("ACME-TOOLS-1", "Acme Tools One"),
)
PERSON_SHARE = 0.1


class Party(NamedTuple):
    account: str
    name: str  # the organisation name, or a person's full name
    is_person: bool


def _org_names(rng: np.random.Generator, n: int) -> list[str]:
    a, b, c = pick(rng, _FIRST, n), pick(rng, _SECOND, n), pick(rng, _FORM, n)
    return [f"{x} {y}{z}" for x, y, z in zip(a, b, c)]


def _people(rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
    return pick(rng, _GIVEN, n).tolist(), pick(rng, _FAMILY, n).tolist()


def _parties(cfg: SandboxConfig, company: str, kind: str, count: int, prefix: str) -> tuple[Party, ...]:
    rng = rng_for(cfg, kind, "parties", company)
    persons = rng.random(count) < PERSON_SHARE
    orgs = _org_names(rng, count)
    given, family = _people(rng, count)
    accounts = ids(f"{company.upper()}-{prefix}{{:05d}}", count).tolist()
    return tuple(
        Party(a, f"{g} {f}" if p else o, bool(p)) for a, o, g, f, p in zip(accounts, orgs, given, family, persons)
    )


@lru_cache(maxsize=64)
def vendor_master(cfg: SandboxConfig, company: str) -> tuple[Party, ...]:
    """Every vendor of a company (the two awkward keys last); documents reference these."""
    regular = _parties(cfg, company, "VendorsV2", max(1, round(50 * cfg.scale)), "V")
    return regular + tuple(Party(a, name, False) for a, name in SPECIAL_VENDORS)


@lru_cache(maxsize=64)
def customer_master(cfg: SandboxConfig, company: str) -> tuple[Party, ...]:
    return _parties(cfg, company, "CustomersV3", max(1, round(40 * cfg.scale)), "C")


def _common(cfg: SandboxConfig, rng: np.random.Generator, company: str, parties: tuple[Party, ...]) -> Columns:
    """Values both entities carry under different names (keyed by role)."""
    n = len(parties)
    country, currency, _ = locale(company)
    credit = np.where(rng.random(n) < 0.2, 0, amounts(rng, n, 1_000, 500_000)).astype(np.int64)
    # One credit limit whose float round trip is wrong: it tests that amounts land as decimals.
    credit[n // 2] = 1_234_567_890_123_456_789
    return {
        "dataAreaId": full(company, n),
        "person": np.array([p.is_person for p in parties]),
        "name": obj([p.name for p in parties]),
        "group": pick(rng, ("10", "20", "30", "Freight", "Intercomp"), n),
        "currency": full(currency, n),
        "hold": pick(rng, ("No", "Invoice", "All", "Payment", "Never"), n, (0.85, 0.05, 0.05, 0.03, 0.02)),
        "credit": credit,
        "terms": pick(rng, ("Net10", "Net30", "Net45", "COD", ""), n),
        "country": full(country, n),
        "iso": full(_ISO.get(country, "US"), n),
        "city": pick(rng, CITIES.get(country, CITIES["USA"]), n),
        "dims": dimensions.default_values(rng, n, cfg.dimension_delimiter),
    }


def _personal(rng: np.random.Generator, person: np.ndarray, names: np.ndarray) -> Columns:
    """Personal fields of the persons; organisations leave them blank, as F&O does."""
    n = len(person)
    given = obj([str(v).split(" ", 1)[0] if p else "" for v, p in zip(names, person)])
    family = obj([str(v).split(" ", 1)[1] if p else "" for v, p in zip(names, person)])
    months = pick(rng, ("January", "March", "May", "July", "September", "November"), n)

    def when_person(values: np.ndarray, blank: object) -> np.ndarray:
        return np.where(person, values, blank)  # type: ignore[call-overload]  # numpy's stubs: any scalar works

    return {
        "given": given,
        "family": family,
        "middle": when_person(pick(rng, ("", "J.", "Maria", "Lee"), n), ""),
        "initials": obj([f"{g[:1]}{f[:1]}" for g, f in zip(given, family)]),
        "birth_day": when_person(rng.integers(1, 29, n), 0),
        "birth_month": when_person(months, "None"),
        "birth_year": when_person(rng.integers(1950, 2001, n), 0),
        "gender": when_person(pick(rng, ("Male", "Female", "NonSpecific"), n), "Unknown"),
        "marital": when_person(pick(rng, ("Single", "Married", "Divorced"), n), "None"),
        "children": when_person(pick(rng, ("", "Mia, Leo", "Sam"), n), ""),
        "hobbies": when_person(pick(rng, ("", "Cycling", "Chess, sailing"), n), ""),
        "birth_place": when_person(pick(rng, ("Leeds", "Porto", "Graz"), n), ""),
        "registry_id": when_person(obj([f"NR-{i:08d}" for i in rng.integers(0, 10**8, n)]), ""),
    }


def _contact(rng: np.random.Generator, person: np.ndarray, names: np.ndarray, domain: str) -> Columns:
    """E-mail, phone and street: a person's own (personal data) or the organisation's."""
    n = len(person)
    slug = [str(v).lower().replace(" ", ".").replace("'", "") for v in names]
    email = obj(
        [f"{s}@mail.example" if p else f"accounts{i}@{domain}" for i, (s, p) in enumerate(zip(slug, person))]
    )
    phone = obj([f"+44 7700 {i:06d}" if p else f"+1 555 {i:04d}" for i, p in zip(rng.integers(0, 10**4, n), person)])
    return {
        "email": with_empty(rng, email, 0.1),
        "phone": with_empty(rng, phone, 0.15),
        "street": pick(rng, _STREETS, n),
        "street_number": obj([str(i) for i in rng.integers(1, 200, n)]),
        "zip": obj([f"{i:05d}" for i in rng.integers(1000, 99999, n)]),
    }


def _shared_fields(c: Columns, me: Columns, ct: Columns) -> Columns:
    """The fields VendorsV2 and CustomersV3 both have under the same names: the primary address and the
    person's details."""
    return {
        "dataAreaId": c["dataAreaId"],
        "AddressCountryRegionId": c["country"],
        "AddressCountryRegionISOCode": c["iso"],
        "AddressCity": c["city"],
        "AddressStreet": ct["street"],
        "AddressStreetNumber": ct["street_number"],
        "AddressZipCode": ct["zip"],
        "PersonFirstName": me["given"],
        "PersonMiddleName": me["middle"],
        "PersonLastName": me["family"],
        "PersonInitials": me["initials"],
        "PersonGender": me["gender"],
        "PersonMaritalStatus": me["marital"],
        "PersonChildrenNames": me["children"],
        "PersonHobbies": me["hobbies"],
        "BirthPlace": me["birth_place"],
    }


def vendors(cfg: SandboxConfig, company: str) -> Columns:
    parties = vendor_master(cfg, company)
    n = len(parties)
    rng = rng_for(cfg, "VendorsV2", company)
    c = _common(cfg, rng, company, parties)
    me = _personal(rng, c["person"], c["name"])
    ct = _contact(rng, c["person"], c["name"], "vendor.example")
    return {
        **_shared_fields(c, me, ct),
        "VendorAccountNumber": obj([p.account for p in parties]),
        "VendorPartyType": np.where(c["person"], "Person", "Organization").astype(object),
        "VendorOrganizationName": np.where(c["person"], "", c["name"]).astype(object),
        "VendorSearchName": obj([v[:20] for v in c["name"]]),
        "VendorGroupId": c["group"],
        "CurrencyCode": c["currency"],
        "OnHoldStatus": c["hold"],
        "CreditLimit": c["credit"],
        "DefaultLedgerDimensionDisplayValue": c["dims"],
        "DefaultPaymentTermsName": c["terms"],
        "PrimaryEmailAddress": ct["email"],
        "PrimaryPhoneNumber": ct["phone"],
        "TaxExemptNumber": with_empty(rng, ids("TX{:07d}", n), 0.3, 0.3),
        "PersonBirthDay": me["birth_day"],
        "PersonBirthMonth": me["birth_month"],
        "PersonBirthYear": me["birth_year"],
        "NationalRegistryNumberId": me["registry_id"],
    }


def customers(cfg: SandboxConfig, company: str) -> Columns:
    parties = customer_master(cfg, company)
    n = len(parties)
    rng = rng_for(cfg, "CustomersV3", company)
    c = _common(cfg, rng, company, parties)
    me = _personal(rng, c["person"], c["name"])
    ct = _contact(rng, c["person"], c["name"], "customer.example")
    return {
        **_shared_fields(c, me, ct),
        "CustomerAccount": obj([p.account for p in parties]),
        "PartyType": np.where(c["person"], "Person", "Organization").astype(object),
        "OrganizationName": np.where(c["person"], "", c["name"]).astype(object),
        "NameAlias": obj([v[:20] for v in c["name"]]),
        "CustomerGroupId": c["group"],
        "SalesCurrencyCode": c["currency"],
        "CreditLimit": c["credit"],
        "CreditLimitIsMandatory": pick(rng, ("No", "Yes"), n, (0.9, 0.1)),
        "PaymentTerms": c["terms"],
        "OnHoldStatus": c["hold"],
        "DeliveryAddressStreet": ct["street"].copy(),
        "DeliveryAddressCity": c["city"].copy(),
        "DeliveryAddressZipCode": ct["zip"].copy(),
        "InvoiceAddressStreet": ct["street"].copy(),
        "InvoiceAddressCity": c["city"].copy(),
        "DefaultDimensionDisplayValue": c["dims"],
        "PrimaryContactEmail": ct["email"],
        "PrimaryContactPhone": ct["phone"],
        "ReceiptEmail": np.where(c["person"], ct["email"], "").astype(object),
        "NationalRegistryNumber": me["registry_id"],
    }
