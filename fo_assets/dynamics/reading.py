"""Running one OData query to the end, page by page, and proving the read complete.

Every query orders by the entity's key: F&O pages by offset, and without an order over a unique key SQL
Server may return rows in a different order for each page, so an offset read skips some rows and
repeats others. Paging is server-driven unless the catalog gives the entity a page size: then it is
client-driven (``$top``/``$skip``), for wide entities whose 10,000-row server pages would be tens of MB
each. A client page still follows any nextLink the server adds, and a page shorter than asked ends it.

A read that took one page is complete by construction. A read of several pages is complete when the
distinct keys it returned equal F&O's own count of the same query, taken by the first page's own request
(``$count=true``, ``@odata.count``): a row deleted from a page already read shifts the offsets of the
pages after it, one row is skipped, and fewer keys come back than F&O counted. The count must be as old
as the first page: counted by a request of its own after it, a row deleted between the two is both read
and not counted, the skipped row makes up for it, and a read that lost a row looks complete. Only a
complete read may flag deletes. (A delete and an insert during the read can still cancel out;
docs/fo-odata.md.)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa

from fo_assets.dynamics import query
from fo_assets.dynamics.decode import DecodedPage, PageDecoder
from fo_assets.dynamics.odata import ODataClient, ReadTarget
from fo_assets.dynamics.schema import EntityPlan, FieldInfo
from fo_assets.dynamics.throttle import Counters

OnPage = Callable[[DecodedPage, str, dt.datetime], None]


class Cancelled(Exception):
    """Another worker of the same batch failed: stop reading, the batch will not land."""


@dataclass(frozen=True)
class QueryResult:
    """What one query read, and F&O's count of it when it took several pages."""

    url: str
    company: str | None
    rows: int
    distinct: int
    pages: int
    source_count: int | None = None

    @property
    def complete(self) -> bool:
        """True when the rows read match the count the server gave (or it gave none)."""
        return self.source_count is None or self.source_count == self.distinct


class QueryRunner:
    """Runs OData queries page by page before a deadline, decoding on a pool the size of the machine."""
    def __init__(self, client: ODataClient, odata_root: str, deadline: float):
        self._client = client
        self._root = odata_root
        self._deadline = deadline
        # Decoding and writing are CPU work, done on a pool the size of the machine rather than on the
        # (many) request threads: more of it at once than there are cores gains nothing, and Arrow's
        # allocator keeps per-thread caches, so decoding on every request thread multiplies the memory
        # held. Requests (waiting on F&O) are bounded by the throttle budget instead.
        self._cpu = ThreadPoolExecutor(max(2, os.cpu_count() or 2), thread_name_prefix="fo-decode")

    def __enter__(self) -> QueryRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cpu.shutdown()

    def run(
        self,
        plan: EntityPlan,
        company: str | None,
        filter: str | None,
        on_page: OnPage,
        counters: Counters,
        cancelled: Callable[[], bool] = lambda: False,
        *,
        prove: bool = True,
    ) -> QueryResult:
        """Read every row of one query into ``on_page``; the result says whether the read was complete
        (``prove=False``: a read no delete depends on, for which F&O's count is not asked)."""
        decoder = PageDecoder(plan)
        keys = [name for name in plan.order_by if name in plan.select_names]
        seen: list[pa.Table] = []
        size = plan.spec.page_size
        first = query.entity_url(self._root, plan.spec.entity_set, filter=filter, select=plan.select_option,
                                 orderby=plan.order_by, top=size, with_count=prove)
        rows = pages = 0
        source_count: int | None = None

        def opened(page: DecodedPage) -> None:
            # Kept once the first page shows there are more: a row deleted from pages already read shifts
            # the offsets and skips one, and F&O's count then exceeds what we read. A server that ignored
            # $count=true is asked at once, before the next page (a narrower proof, see above).
            nonlocal source_count
            more = page.next_link or (size is not None and page.table.num_rows == size)
            if prove and more and source_count is None:
                source_count = page.count if page.count is not None else self.count(plan, company, filter, counters)

        def take(page: DecodedPage, page_url: str, at: dt.datetime) -> None:
            nonlocal rows, pages
            rows += page.table.num_rows
            pages += 1
            seen.append(page.table.select(keys))
            on_page(page, page_url, at)

        if size is None:
            self._pages(first, plan, decoder, company, take, counters, cancelled, opened)
        else:
            skip = 0
            while True:
                url = first if skip == 0 else query.entity_url(
                    self._root, plan.spec.entity_set, filter=filter, select=plan.select_option,
                    orderby=plan.order_by, top=size, skip=skip)
                before = rows
                self._pages(url, plan, decoder, company, take, counters, cancelled, opened)
                # Fewer rows than asked: the end. More: the server paged the whole rest itself by nextLink.
                if rows - before != size:
                    break
                skip += size
        if source_count is None:
            return QueryResult(first, company, rows, rows, pages)
        distinct = pa.concat_tables(seen).group_by(keys).aggregate([]).num_rows if keys else rows
        return QueryResult(first, company, rows, distinct, pages, source_count)

    def count(self, plan: EntityPlan, company: str | None, filter: str | None, counters: Counters) -> int:
        """F&O's ``$count`` of a query's rows."""
        url = query.entity_url(self._root, plan.spec.entity_set, filter=filter, count=True)
        body = self._client.get(url, ReadTarget(plan.spec.entity_set, company), counters, self._deadline, "text/plain")
        return int(body.decode("utf-8-sig").strip())

    def collect(self, plan: EntityPlan, company: str | None, filter: str | None, counters: Counters,
                cancelled: Callable[[], bool] = lambda: False) -> tuple[pa.Table, str]:
        """A small query's rows as one table (header keys), and its URL: never use it for an entity's data."""
        tables: list[pa.Table] = []
        result = self.run(plan, company, filter, lambda page, url, at: tables.append(page.table), counters,
                          cancelled, prove=False)
        return (pa.concat_tables(tables) if tables else plan.arrow_schema.empty_table()), result.url

    def _pages(self, url: str, plan: EntityPlan, decoder: PageDecoder, company: str | None, on_page: OnPage,
               counters: Counters, cancelled: Callable[[], bool], opened: Callable[[DecodedPage], None]) -> None:
        target = ReadTarget(plan.spec.entity_set, company)

        def decode(body: bytearray, page_url: str) -> DecodedPage:
            return self._cpu.submit(decoder.decode, body, url=page_url, company=company).result()

        for page_url, page in self._client.pages(url, decode, target, counters, self._deadline):
            if cancelled():
                raise Cancelled()
            opened(page)
            self._cpu.submit(on_page, page, page_url, dt.datetime.now(dt.UTC)).result()


def narrowed(plan: EntityPlan, fields: Sequence[str]) -> EntityPlan:
    """The same entity read with only its key and ``fields`` selected (header keys for line reads)."""
    names = dict.fromkeys([*plan.order_by, *fields])
    return dataclasses.replace(plan, select=tuple(plan.field(name) for name in names), derived=())


def key_filters(plan: EntityPlan, base: str | None, groups: Iterable[Sequence[tuple[str, object]]]) -> list[str]:
    """``base`` AND one chunk of ``(a eq x and b eq y) or ...`` per request, every request within the
    filter's character and node bounds."""
    typed = [[(plan.field(name), value) for name, value in group] for group in groups]
    budget = query.MAX_FILTER_NODES - (query.nodes(base) + 1 if base else 0)
    return [query.and_all(base, chunk) or chunk for chunk in query.key_chunks(typed, max_nodes=budget)]


def rows_as_groups(table: pa.Table, fields: Sequence[str], names: Sequence[str] | None = None
                   ) -> list[tuple[tuple[str, object], ...]]:
    """Each row of ``table``'s ``fields`` as ((name, value), ...), named ``names`` (default: the fields)."""
    columns = [table.column(name).to_pylist() for name in fields]
    return [tuple(zip(names or fields, values)) for values in zip(*columns)]


def exact_matches(table: pa.Table, groups: Sequence[Sequence[tuple[FieldInfo, object]]]) -> pa.Table:
    """The rows of a keyed read that equal one of ``groups`` exactly. F&O reads ``*`` inside ``eq '...'`` as
    a wildcard and has no escape for it, so a lookup of ``AB*`` also returns ``ABC``: those rows go.
    Text compares ignoring case, as F&O's collation does."""
    wanted: dict[tuple[str, ...], set[tuple[object, ...]]] = {}
    for group in groups:
        names = tuple(field.name for field, _ in group)
        wanted.setdefault(names, set()).add(tuple(_comparable(field, value) for field, value in group))
    fields = {field.name: field for group in groups for field, _ in group}
    keep = [False] * table.num_rows
    for names, values in wanted.items():
        columns = [table.column(name).to_pylist() for name in names]
        for index, row in enumerate(zip(*columns)):
            keep[index] = keep[index] or tuple(_comparable(fields[n], v) for n, v in zip(names, row)) in values
    return table if all(keep) else table.filter(pa.array(keep, pa.bool_()))


def _comparable(field: FieldInfo, value: object) -> object:
    if value is None:
        return None
    if field.kind in ("string", "enum", "guid", "other"):
        return str(value).lower()
    if field.kind in ("decimal", "int32", "int64"):
        return Decimal(str(value))
    if field.kind == "date":
        return str(value)[:10]
    return str(value)
