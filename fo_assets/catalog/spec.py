"""What fo-assets knows about one F&O entity: ``EntitySpec`` and the small types it is made of.

A spec states facts about the tenant's entity (its entity set, its key exactly as ``$metadata`` declares
it, the fields that say which company and which day a row belongs to, how its lines join its headers)
and choices about landing it (fields to leave out, page size, the Business Events that name it). The
facts are checked against the real tenant's metadata by the contract test and again at the start of
every run; see docs/fo-odata.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

DimensionFormat = Literal["ledger", "default"]
Mode = Literal["window", "snapshot", "lines"]


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

    ``namings`` lists the ways a payload may name the record, each a tuple of (payload field, entity
    field) pairs; the first naming whose payload fields are all present is used (the vendor-invoice event
    is seen both as ``InvoiceAccount``/``InvoiceId`` and as ``VendorAccount``/``InvoiceNumber``). The
    targeted pull filters on all of the naming's entity fields; the event's legal entity selects the
    company.
    """

    business_event_id: str
    namings: tuple[tuple[tuple[str, str], ...], ...]


@dataclass(frozen=True)
class CompanyLookup:
    """The company of an entity that has no company field, found through another entity.

    GL voucher headers carry ``Ledger`` (a RecId); ``Ledgers.LedgerRecId`` equal to it names the legal
    entity in ``Ledgers.LegalEntityId``. Reads filter on ``field`` with the RecId of each configured
    company, and the landed rows get the company as a derived column (the spec's ``company_field``).
    """

    field: str
    entity_set: str
    key: str
    company_field: str


@dataclass(frozen=True)
class ParentLink:
    """How the rows of a line entity join their header entity.

    ``join`` pairs (line field, header field); the names may differ (GL lines' ``GeneralJournalEntry`` is
    the header's ``SourceKey``). ``inherit`` names header columns every landed line gets as derived columns
    (a GL line has no company and no date of its own: it lands with its header's).
    """

    entity_set: str
    join: tuple[tuple[str, str], ...]
    inherit: tuple[str, ...] = ()

    @property
    def line_fields(self) -> tuple[str, ...]:
        """The line entity's fields of the join, in join order."""
        return tuple(line for line, _ in self.join)

    @property
    def header_fields(self) -> tuple[str, ...]:
        """The header entity's fields of the join, in join order."""
        return tuple(header for _, header in self.join)


@dataclass(frozen=True)
class OpenStates:
    """Records that are not finished yet are re-read by every windowed run, whatever their date: F&O
    records no modified time on them, so a status change on an old record is otherwise invisible to a
    date window. ``finished`` are the enum symbols of ``field`` that end a record's life."""

    field: str
    finished: tuple[str, ...]


@dataclass(frozen=True)
class EntitySpec:
    """One F&O entity as fo-assets reads and lands it: entity set, keys, group, mode and fields.

    Not validated here: ``Catalog`` raises CatalogError for two specs sharing an entity set or table, and
    a catalog file's loader (catalog/custom.py) for an entry it cannot take, naming the file and entity.
    """
    entity_set: str
    # The tenant's key, exactly as $metadata declares it (order included): the row identity of the table.
    keys: tuple[str, ...]
    group: str
    description: str
    # The landed column that names the company (lower case): a field of the entity, or a derived column
    # (see company_lookup and ParentLink.inherit). None: a shared entity, the same for every company.
    company_field: str | None = "dataAreaId"
    company_lookup: CompanyLookup | None = None
    window_field: str | None = None
    # A modified timestamp: a windowed read also re-reads rows changed during the window.
    changed_field: str | None = None
    open_states: OpenStates | None = None
    parent: ParentLink | None = None
    # None means every public field of the entity in the tenant (new tenant fields become new columns).
    fields: tuple[str, ...] | None = None
    excluded_fields: tuple[str, ...] = ()
    # Personal data (person names, birth and family details, personal contact channels and addresses,
    # government ids of persons): never landed unless the code location opts in field by field.
    personal_fields: tuple[str, ...] = ()
    # None: server-driven paging. A number: client-driven $top/$skip, for wide entities whose 10,000-row
    # server pages would be tens of MB of JSON each.
    page_size: int | None = None
    dimensions: tuple[DimensionField, ...] = ()
    events: tuple[EventBinding, ...] = ()

    @property
    def table(self) -> str:
        """The table name the entity lands in (snake case of the entity set)."""
        return snake_case(self.entity_set)

    @property
    def asset_key_path(self) -> list[str]:
        """The asset key path of the entity, before any code location prefix."""
        return ["fo", self.table]

    @property
    def key_columns(self) -> tuple[str, ...]:
        """Row identity in the landed table: the tenant's key."""
        return self.keys

    @property
    def derived_columns(self) -> tuple[str, ...]:
        """Columns fo-assets adds to the landed rows from other entities (documented as derived)."""
        derived = [self.company_field] if self.company_lookup and self.company_field else []
        derived += [name for name in (self.parent.inherit if self.parent else ()) if name not in derived]
        return tuple(derived)

    @property
    def parent_scope_columns(self) -> tuple[str, ...]:
        """The columns that name a line's header in the lines' own names (company, join fields): the
        delete scope of a line batch is the headers it read, ``scope/parents.parquet`` in these columns."""
        company = (self.company_field,) if self.company_field else ()
        return tuple(dict.fromkeys([*company, *(self.parent.line_fields if self.parent else ())]))

    @property
    def company_filter_field(self) -> str | None:
        """The F&O field a read filters on to select one company (None: not company-scoped in F&O)."""
        if self.company_lookup:
            return self.company_lookup.field
        if self.company_field in self.derived_columns:
            return None
        return self.company_field


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(name: str) -> str:
    """``VendorsV2`` -> ``vendors_v2``, ``GeneralJournalEntryBiEntities`` -> ``general_journal_entry_bi_entities``."""
    return _CAMEL.sub("_", name).lower()
