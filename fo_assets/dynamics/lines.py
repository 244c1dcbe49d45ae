"""Reading a line entity: the lines of the headers a run read, never by a date of their own.

The headers come from the header batch of the same call when there is one (its pages carry the keys the
lines need), otherwise from a narrow read of the header keys in the window. Lines are then read one of
two ways:

- by key chunks, per company: ``dataAreaId eq 'usmf' and (PurchaseOrderNumber eq 'A' or ...)``, each
  request within the filter's node and length bounds (purchase order and invoice lines);
- by ranges of one integer join field, for lines that have no company of their own (GL lines join their
  voucher by RecId): the header RecIds of every company, sorted, become a few ``ge``/``le`` ranges read
  concurrently, so a year of ledger costs requests per page of lines, not per hundred vouchers. A range
  also holds lines of vouchers outside the run (another company, another window): they are dropped and
  counted as ``lines_without_header``, and land when their own vouchers are read.

Lines that inherit header columns (a GL line's company and accounting date) get them by a join on the
join fields; a line whose header is not among the run's is never landed without them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
import pyarrow as pa

from fo_assets.dynamics import query
from fo_assets.dynamics.decode import DecodedPage
from fo_assets.dynamics.errors import FoError
from fo_assets.dynamics.extraction import THREADS_PER_REQUEST, Extraction, company_clause, header_columns
from fo_assets.dynamics.reading import QueryRunner, key_filters, rows_as_groups

# Ranges split where the gap between two header RecIds is this many times the typical gap: the lines
# between belong to vouchers the run did not read.
GAP_FACTOR = 16
# The most headers one range holds. A voucher has at least two lines (a debit and a credit), so a range of
# 2,500 vouchers is at least half of F&O's 10,000-row page: ranges stay about a page long, and a backfill
# becomes many one-page reads that keep every allowed request in flight to the end, instead of a few
# long ranges paged one nextLink at a time whose last pages run alone.
MAX_HEADERS_PER_RANGE = 2_500
Read = Callable[[Extraction, str | None, str | None, Callable[[DecodedPage], DecodedPage] | None], None]

log = logging.getLogger(__name__)


def read_lines(job: Extraction, company: str | None, runner: QueryRunner, read: Read, parallelism: int) -> None:
    """Read the lines of ``company``'s headers (every company's, for lines without a company) into the job."""
    spec = job.plan.spec
    assert spec.parent is not None and job.header is not None
    headers = header_rows(job, company, runner)
    line_names = spec.parent.line_fields
    renamed = headers.rename_columns([_line_name(job, name) for name in headers.column_names])
    job.keys[company] = [renamed.select(list(spec.parent_scope_columns))]
    header_day = job.header.spec.window_field
    if job.plan.day_column is None and header_day in renamed.column_names:
        keys = [name for name in line_names if name in renamed.column_names]
        job.day_lookups[company] = renamed.select([*keys, header_day]).rename_columns([*keys, "_day"])
    reads: list[tuple[str | None, Callable[[DecodedPage], DecodedPage] | None]]
    if ranged(job):
        (line_field,) = [name for name in line_names if name != spec.company_field]
        # Sorted once, so that each range's headers are a slice: each range joins only its own headers (a
        # join builds its hash table from the lookup on every page, and the whole run's headers made that
        # the costliest step of a backfill).
        ordered = renamed.sort_by(line_field)
        keys = ordered.column(line_field).to_numpy()
        reads = [(query.and_all(f"{line_field} ge {low}", f"{line_field} le {high}"),
                  _attacher(job, _between(ordered, keys, low, high)) if spec.parent.inherit else None)
                 for low, high in value_ranges(np.unique(keys), parallelism, MAX_HEADERS_PER_RANGE)]
    else:
        fields = [name for name in line_names if name != spec.company_field]
        base = company_clause(spec, company, job.company_ids)
        attach = _attacher(job, renamed) if spec.parent.inherit else None
        reads = [(f, attach) for f in key_filters(job.plan, base, rows_as_groups(renamed, fields))]
    # A backfill's headers make hundreds of key chunks: read them concurrently like sub-windows (a pool of
    # its own, as waiting on the outer pool from inside it could deadlock).
    with ThreadPoolExecutor(THREADS_PER_REQUEST * parallelism, thread_name_prefix="fo-lines") as chunks:
        for done in [chunks.submit(read, job, company, f, attach) for f, attach in reads]:
            done.result()


def ranged(job: Extraction) -> bool:
    """Lines without a company filter joined by one integer field are read by ranges of it."""
    spec = job.plan.spec
    assert spec.parent is not None
    fields = [name for name in spec.parent.line_fields if name != spec.company_field]
    return (spec.company_filter_field is None and len(fields) == 1
            and job.plan.field(fields[0]).kind in ("int32", "int64"))


def header_rows(job: Extraction, company: str | None, runner: QueryRunner) -> pa.Table:
    """The header columns the lines need, for ``company`` (None: every company the job reads)."""
    header = job.header
    assert header is not None
    columns = list(header_columns(job.plan.spec, header.spec))
    companies = list(header.companies) if company is None else [company]
    if job.header_job is not None:
        source = job.header_job
        wait([unit for c in companies for unit in source.futures.get(c, [])])
        if source.sink.error is not None:
            raise FoError(f"the {header.spec.entity_set} read failed, so its lines were not read: "
                          f"{source.sink.error.reason}", entity_set=job.plan.spec.entity_set, company=company)
        tables = [t.select(columns) for c in companies for t in source.keys.get(c, [])]
    else:
        with ThreadPoolExecutor(len(companies) or 1, thread_name_prefix="fo-headers") as reads:
            tables = list(reads.map(lambda c: _read_headers(job, c, runner, columns), companies))
    return pa.concat_tables(tables) if tables else _empty(job, columns)


def _read_headers(job: Extraction, company: str | None, runner: QueryRunner, columns: list[str]) -> pa.Table:
    header = job.header
    assert header is not None
    spec = header.spec
    clause = company_clause(spec, company, header.company_ids)
    window = (query.window_filter(header.plan.field(spec.window_field or ""), *job.request.window)
              if job.request.window and spec.window_field else None)
    table, url = runner.collect(header.plan, company, query.and_all(clause, window), job.sink.counters,
                                lambda: job.sink.failed)
    job.sink.query(url)
    if spec.company_lookup and spec.company_field:  # the derived company is the one the read was for
        table = table.append_column(spec.company_field, pa.repeat(pa.scalar(company, pa.string()), table.num_rows))
    return table.select(columns)


def _empty(job: Extraction, columns: list[str]) -> pa.Table:
    header = job.header
    assert header is not None
    types = {f.name: f.arrow_type for f in header.plan.schema.fields}
    return pa.schema([pa.field(name, types.get(name, pa.string())) for name in columns]).empty_table()


def _line_name(job: Extraction, header_name: str) -> str:
    spec = job.plan.spec
    assert spec.parent is not None
    names = {header: line for line, header in spec.parent.join}
    return names.get(header_name, header_name)


def _attacher(job: Extraction, headers: pa.Table) -> Callable[[DecodedPage], DecodedPage]:
    """Give each line page its header's inherited columns; lines whose header is not in ``headers`` go."""
    spec = job.plan.spec
    assert spec.parent is not None
    keys = [name for name in spec.parent.line_fields if name not in spec.parent.inherit]
    lookup = headers.select([*keys, *spec.parent.inherit])
    order = [*job.plan.select_names, *(name for name in spec.parent.inherit if name not in job.plan.select_names)]

    def attach(page: DecodedPage) -> DecodedPage:
        joined = page.table.join(lookup, keys=keys, join_type="inner", use_threads=False).select(order)
        dropped = page.table.num_rows - joined.num_rows
        if dropped:
            job.sink.without_header(dropped)
        return page.with_table(joined)

    return attach


def value_ranges(values: np.ndarray, parts: int, most: int | None = None) -> list[tuple[int, int]]:
    """Sorted unique integers as at least ``parts`` ranges (where there are enough values) of at most
    ``most`` values each, leaving out the wide gaps between them."""
    if len(values) == 0:
        return []
    gaps = np.diff(values)
    typical = float(np.median(gaps)) if len(gaps) else 1.0
    cuts = np.flatnonzero(gaps > max(1.0, typical) * GAP_FACTOR) + 1
    groups = [g for g in np.split(values, cuts) if len(g)]
    if most is not None:
        groups = [part for g in groups for part in np.array_split(g, -(-len(g) // most))]
    while len(groups) < parts:
        largest = max(range(len(groups)), key=lambda i: len(groups[i]))
        if len(groups[largest]) < 2:
            break
        half = len(groups[largest]) // 2
        groups[largest:largest + 1] = [groups[largest][:half], groups[largest][half:]]
    return [(int(g[0]), int(g[-1])) for g in groups]


def _between(ordered: pa.Table, keys: np.ndarray, low: int, high: int) -> pa.Table:
    """The rows of ``ordered`` (sorted by ``keys``) whose key lies in [low, high]."""
    start, stop = np.searchsorted(keys, low, "left"), np.searchsorted(keys, high, "right")
    return ordered.slice(int(start), int(stop - start))
