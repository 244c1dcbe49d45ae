"""One extract request in flight: its plan, its batch, its reads per company, and how it names companies.

A company is selected in F&O in one of three ways: a field of the entity (``dataAreaId eq 'usmf'``), a
pointer to another entity that names it (GL vouchers: ``Ledger eq <the company's LedgerRecId>``), or not
at all (GL lines, which have no company and get their voucher's). ``company_clause`` writes the first two.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

import pyarrow as pa

from fo_assets.catalog import EntitySpec
from fo_assets.dynamics import query
from fo_assets.dynamics.batches import BatchBuilder
from fo_assets.dynamics.errors import FoError
from fo_assets.dynamics.schema import EntityPlan

if TYPE_CHECKING:
    from fo_assets.dynamics.extract import ExtractRequest

ReadMode = Literal["window", "snapshot", "lines", "keys"]

# Read threads per request the throttle budget allows in flight: while one thread decodes and writes its
# page, another's request holds the slot. The budget, not the thread pools, bounds the requests in flight.
THREADS_PER_REQUEST = 2


@dataclass
class Header:
    """A line entity's header: the plan that reads its keys, and how its companies are selected."""

    spec: EntitySpec
    plan: EntityPlan  # narrowed to what the lines need: join fields, inherited fields, company pointer
    companies: tuple[str | None, ...]  # whose headers the lines are read for
    company_ids: Mapping[str, int]


@dataclass
class Extraction:
    """The state of one entity's extraction: the request, its read mode, plan and batch builder."""
    request: ExtractRequest
    mode: ReadMode
    plan: EntityPlan
    sink: BatchBuilder
    companies: tuple[str | None, ...]
    company_ids: Mapping[str, int] = field(default_factory=dict)  # company -> RecId, for a company lookup
    header: Header | None = None  # lines
    header_job: Extraction | None = None  # lines: the header job of the same call whose keys are reused
    key_fields: tuple[str, ...] = ()  # headers: the columns lines need, collected while writing
    # Per company: a header job's key columns as its pages land; a line job's headers once known.
    keys: dict[str | None, list[pa.Table]] = field(default_factory=dict)
    futures: dict[str | None, list[Future]] = field(default_factory=dict)  # the reads of each company
    # Lines without a date: per company, their header's day by join fields (see BatchBuilder.write).
    day_lookups: dict[str | None, pa.Table] = field(default_factory=dict)

    def units(self) -> list[Future]:
        """Every read of this extraction, all companies."""
        return [unit for units in self.futures.values() for unit in units]


T = TypeVar("T")


class ParentsFirst(Generic[T]):
    """Releases the item of each of ``specs`` (by position) only after the items of the specs of its parent
    entity among them: Dagster refuses a multi-asset output yielded before one of an asset it depends on."""

    def __init__(self, specs: list[EntitySpec]):
        self._parents = [[i for i, p in enumerate(specs) if spec.parent and p.entity_set == spec.parent.entity_set]
                         for spec in specs]
        self._released: set[int] = set()
        self._waiting: dict[int, T] = {}

    def add(self, position: int, item: T) -> list[T]:
        """The item at ``position`` is ready: every item that may go now, in order."""
        self._waiting[position] = item
        out: list[T] = []
        while ready := [i for i in self._waiting if self._released.issuperset(self._parents[i])]:
            for i in ready:
                self._released.add(i)
                out.append(self._waiting.pop(i))
        return out


def company_clause(spec: EntitySpec, company: str | None, company_ids: Mapping[str, int]) -> str | None:
    """The filter that selects ``company``'s rows of ``spec`` in F&O (None: the entity has no such filter)."""
    if company is None:
        return None
    if spec.company_lookup:
        if company not in company_ids:
            known = ", ".join(sorted(company_ids)) or "none"
            raise FoError(f"legal entity {company!r} has no row in {spec.company_lookup.entity_set} (found: {known}): "
                          "check FO_LEGAL_ENTITIES", entity_set=spec.entity_set, company=company)
        return f"{spec.company_lookup.field} eq {company_ids[company]}"
    name = spec.company_filter_field
    return query.company_filter(name, company) if name else None


def link_headers(jobs: list[Extraction]) -> None:
    """Let line jobs reuse the header keys a header job of the same call reads anyway."""
    for job in jobs:
        if job.mode != "lines" or job.header is None:
            continue
        for header in jobs:
            if (header.mode in ("window", "snapshot") and header.plan.spec.entity_set == job.header.spec.entity_set
                    and header.request.window == job.request.window
                    and _covers(header.companies, job.companies)):
                needed = header_columns(job.plan.spec, job.header.spec)
                if all(name in header.plan.select_names or name in header.plan.spec.derived_columns
                       for name in needed):
                    header.key_fields = tuple(dict.fromkeys([*header.key_fields, *needed]))
                    job.header_job = header
                    break


def header_columns(lines: EntitySpec, header: EntitySpec) -> tuple[str, ...]:
    """The header columns a line read needs: its join fields, what the lines inherit, its company and day."""
    assert lines.parent is not None
    company = (header.company_field,) if header.company_field else ()
    day = (header.window_field,) if header.window_field else ()
    return tuple(dict.fromkeys([*company, *lines.parent.header_fields, *lines.parent.inherit, *day]))


def _covers(headers: tuple[str | None, ...], lines: tuple[str | None, ...]) -> bool:
    # Lines with no company of their own are read once for every company the headers cover.
    return lines == (None,) or set(lines) <= set(headers)
