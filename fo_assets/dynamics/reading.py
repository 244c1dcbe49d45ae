"""Running one OData query to the end, page by page, and the filters the extraction modes need.

Paging is server-driven unless the catalog gives the entity a page size: then it is client-driven
(``$top``/``$skip`` with ``$orderby`` over the full key, for wide entities whose 10,000-row server
pages would be tens of MB each). A client page still follows any nextLink the server adds, and a page
shorter than asked ends the query.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fo_assets.dynamics import query
from fo_assets.dynamics.decode import DecodedPage, PageDecoder
from fo_assets.dynamics.errors import SchemaError
from fo_assets.dynamics.odata import ODataClient, Target
from fo_assets.dynamics.schema import EntityPlan
from fo_assets.dynamics.throttle import Counters

OnPage = Callable[[DecodedPage, str, dt.datetime], None]


class Cancelled(Exception):
    """Another worker of the same batch failed: stop reading, the batch will not land."""


class QueryRunner:
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
        on_query: Callable[[str], None] = lambda url: None,
    ) -> int:
        """Read every row of one query into ``on_page``; returns the number of rows."""
        decoder = PageDecoder(plan)
        size = plan.spec.page_size
        select = plan.select_option
        if size is None:
            url = query.entity_url(self._root, plan.spec.entity_set, filter=filter, select=select)
            on_query(url)
            return self._pages(url, plan, decoder, company, on_page, counters, cancelled)
        total = skip = 0
        while True:
            url = query.entity_url(
                self._root, plan.spec.entity_set,
                filter=filter, select=select, orderby=plan.order_by, top=size, skip=skip,
            )
            if skip == 0:
                on_query(url)
            rows = self._pages(url, plan, decoder, company, on_page, counters, cancelled)
            total += rows
            # Fewer rows than asked: the end. More: the server paged the whole rest itself by nextLink.
            if rows != size:
                return total
            skip += size

    def collect(self, plan: EntityPlan, company: str | None, filter: str | None, counters: Counters,
                cancelled: Callable[[], bool] = lambda: False,
                on_query: Callable[[str], None] = lambda url: None) -> pa.Table:
        """A small query's rows as one table (parent keys): never use it for an entity's data."""
        tables: list[pa.Table] = []
        self.run(plan, company, filter, lambda page, url, at: tables.append(page.table), counters, cancelled, on_query)
        return pa.concat_tables(tables) if tables else plan.arrow_schema.empty_table()

    def _pages(self, url: str, plan: EntityPlan, decoder: PageDecoder, company: str | None, on_page: OnPage,
               counters: Counters, cancelled: Callable[[], bool]) -> int:
        rows = 0
        target = Target(plan.spec.entity_set, company)
        def decode(body: bytearray, page_url: str) -> DecodedPage:
            return self._cpu.submit(decoder.decode, body, url=page_url, company=company).result()

        for page_url, page in self._client.pages(url, decode, target, counters, self._deadline):
            if cancelled():
                raise Cancelled()
            self._cpu.submit(on_page, page, page_url, dt.datetime.now(dt.timezone.utc)).result()
            rows += page.table.num_rows
        return rows


def narrowed(plan: EntityPlan, fields: Sequence[str]) -> EntityPlan:
    """The same entity read with only ``fields`` selected (key columns for line lookups)."""
    return dataclasses.replace(plan, select=tuple(plan.field(name) for name in fields))


def key_filters(plan: EntityPlan, company: str | None, groups: Iterable[Sequence[tuple[str, object]]]) -> list[str]:
    """Company filter AND one chunk of ``(a eq x and b eq y) or ...`` per URL."""
    typed = [[(_field(plan, name), value) for name, value in group] for group in groups]
    company_field = plan.spec.company_field
    company_clause = query.company_filter(company_field, company) if company and company_field else None
    return [query.and_all(company_clause, chunk) or chunk for chunk in query.key_chunks(typed)]


def _field(plan: EntityPlan, name: str):
    found = plan.schema.get(name)
    if found is None:
        raise SchemaError(f"lookup field {name!r} does not exist in the tenant", entity_set=plan.spec.entity_set)
    return found


def rows_as_groups(table: pa.Table, fields: Sequence[str]) -> list[tuple[tuple[str, object], ...]]:
    columns = [table.column(name).to_pylist() for name in fields]
    return [tuple(zip(fields, values)) for values in zip(*columns)]


def count_rows(client: ODataClient, odata_root: str, plan: EntityPlan, company: str | None,
               window: tuple[dt.date, dt.date] | None, parents: Path | None, counters: Counters,
               deadline: float) -> int:
    """F&O's ``$count`` of one company's rows in a window, or of the lines of the parents recorded in
    ``parents`` (a line batch's ``scope/parents.parquet``), chunked like the read was."""
    spec = plan.spec
    filters: list[str | None]
    if parents is not None:
        table = pq.read_table(parents) if parents.exists() else None
        if table is not None and company and spec.company_field:
            table = table.filter(pc.equal(table.column(spec.company_field), company.lower()))
        filters = list(key_filters(plan, company, rows_as_groups(table, spec.parent_keys) if table else []))
    else:
        clause = query.company_filter(spec.company_field, company) if company and spec.company_field else None
        in_window = query.window_filter(spec.window_field, *window) if window and spec.window_field else None
        filters = [query.and_all(clause, in_window)]
    total = 0
    for filter in filters:
        url = query.entity_url(odata_root, spec.entity_set, filter=filter, count=True)
        body = client.get(url, Target(spec.entity_set, company), counters, deadline, "text/plain")
        total += int(body.decode("utf-8-sig").strip())
    return total
