"""The extraction engine the Dagster assets call: extract requests in, landed batches out.

One ``Extractor`` per run holds one keep-alive client and draws from the environment's shared throttle
budget. ``landing`` hands each request's batch over as soon as its own reads are done, while the others
keep reading (the assets load the GL vouchers while their lines are still in flight); ``extract`` returns
them all. Both check every request against the tenant's metadata first: a request that does not
match (an entity set the tenant lacks, a key that is not its key, a missing field) fails its own batch
with a message naming what differs, and every other request is still read. Companies and entities are
read concurrently on a thread pool, each page streamed straight into its batch's Parquet parts: memory
stays at a few pages per worker.

Modes: ``window`` reads ``[start, end)`` per company (plus, where the entity has them, the rows changed
in those days and the records not finished yet); ``snapshot`` reads the whole entity per company
(shared entities once); ``lines`` reads the lines of the headers in the window (see lines.py); ``keys``
(any request with lookups) reads the named records and never deletes anything. A windowed entity asked
for without a window is read whole per company (the full history of a reconciliation), like a snapshot.
Each scope read completely becomes a ``DeleteScope``; a batch with any failed read lands nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from fo_assets.catalog import EntitySpec
from fo_assets.dynamics import query
from fo_assets.dynamics.auth import TokenProvider
from fo_assets.dynamics.batches import BatchBuilder
from fo_assets.dynamics.contract import mismatches
from fo_assets.dynamics.decode import DecodedPage
from fo_assets.dynamics.errors import FoError, SchemaError
from fo_assets.dynamics.extraction import (
    THREADS_PER_REQUEST,
    Extraction,
    Header,
    ParentsFirst,
    ReadMode,
    company_clause,
    header_columns,
    link_headers,
)
from fo_assets.dynamics.lines import read_lines
from fo_assets.dynamics.metadata import MetadataStore, folder_for
from fo_assets.dynamics.metadata_cache import SharedFolder
from fo_assets.dynamics.odata import ODataClient, ReadTarget, RetryPolicy
from fo_assets.dynamics.reading import Cancelled, QueryRunner, exact_matches, key_filters, narrowed
from fo_assets.dynamics.schema import EntityPlan, EntitySchema, plan_entity
from fo_assets.dynamics.throttle import Counters, budget_for
from fo_assets.landing import DeleteScope, LandedBatch, Ledger, Manifest, new_batch_id
from fo_assets.settings import Settings

KeyLookup = tuple[str | None, tuple[tuple[str, str], ...]]  # (company, ((field, value), ...))
Transform = Callable[[DecodedPage], DecodedPage]
Window = tuple[dt.date, dt.date]

# The shortest sub-window a windowed read is split into: a day. On F&O every page costs seconds of server
# time (docs/fo-odata.md, section 5), so throughput comes from requests in flight: a backfill of 60 days
# in three companies read as one query per company keeps 3 requests in flight, each following its
# nextLink one page at a time. Split by day, up to the budget's concurrency per company, it keeps the
# budget full. A split costs one part-filled page per sub-window, so the number of sub-windows is bounded
# by the concurrency, never by the days.
MIN_SUBWINDOW_DAYS = 1


@dataclass(frozen=True)
class ExtractRequest:
    """What one extraction reads: an entity, and a window, keys or companies to narrow it."""
    spec: EntitySpec
    window: tuple[dt.date, dt.date] | None = None  # [start, end) for windowed entities and lines; None: all
    lookups: tuple[KeyLookup, ...] | None = None  # keyed pull
    companies: tuple[str, ...] | None = None  # default: the settings' legal entities


@dataclass(frozen=True)
class Read:
    """One query of an extraction: its filter, what to do to each page, and whether it is part of a delete
    scope (then its completeness is proven and recorded, with the days it covers)."""

    filter: str | None
    transform: Transform | None = None
    scope: bool = True
    window: Window | None = None


@dataclass(frozen=True)
class Landing:
    """One request's batch, handed over when its reads are done; ``error`` says why it failed (None: landed)."""
    request: ExtractRequest
    batch: LandedBatch
    error: FoError | None


class ExtractError(FoError):
    """Some requests failed; ``batches`` holds every batch of the call (failed ones not loadable); ``extract``
    raises it with them in request order."""

    def __init__(self, failures: list[FoError], batches: list[LandedBatch]):
        shown = "; ".join(str(f) for f in failures[:3])
        more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
        super().__init__(f"{len(failures)} of {len(batches)} extractions failed: {shown}{more}")
        self.failures = failures
        self.batches = batches


class Extractor:
    """Reads entities from F&O into landed batches, under one throttle budget per run.

    Raises:
        ExtractError: (from ``extract``) some requests failed; it names each failure (entity, company, URL)
            and keeps every batch, so the ones that landed can still be loaded.
    """
    def __init__(self, settings: Settings, run_id: str, *, log: logging.Logger | None = None,
                 policy: RetryPolicy | None = None, ledger: Ledger | None = None):
        self._settings = settings
        self._catalog = settings.catalog
        self._fo = settings.require_fo()
        self._run_id = run_id
        self._log = log or logging.getLogger(__name__)
        tokens = TokenProvider(self._fo, settings.secret("FO_CLIENT_SECRET"), timeout_s=self._fo.request_timeout_s)
        self._client = ODataClient(self._fo, tokens, budget_for(self._fo), policy, self._log)
        self._ledger = ledger or Ledger(settings.home)
        archive = self._ledger.archive
        folder = folder_for(settings.home, self._fo.base_url)
        # With the landing zone archived, the metadata cache is shared there too: run pods start empty.
        shared = SharedFolder(archive, f"_fo_metadata/{folder.name.replace('.', '_')}") if archive else None
        self._metadata = MetadataStore(folder, self._fo.base_url, self._fetch, shared=shared)
        self._company_ids: dict[str, dict[str, int]] = {}  # lookup entity set -> company -> RecId
        self._totals = Counters()
        self._seconds = 0.0

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the OData client and its connections."""
        self._client.close()

    @property
    def stats(self) -> dict:
        """The run's request counters so far, and the seconds spent extracting."""
        return {**self._totals.as_dict(), "seconds": round(self._seconds, 3)}

    def extract(self, requests: Sequence[ExtractRequest]) -> list[LandedBatch]:
        """Read every request's entity into a landed batch, concurrently under one throttle budget.

        Raises:
            ExtractError: some requests failed; every batch is returned on it, failed ones not loadable.
        """
        position = {id(request): index for index, request in enumerate(requests)}
        landings = sorted(self.landing(requests), key=lambda landing: position[id(landing.request)])
        batches = [landing.batch for landing in landings]
        failures = [landing.error for landing in landings if landing.error is not None]
        if failures:
            raise ExtractError(failures, batches)
        return batches

    def landing(self, requests: Sequence[ExtractRequest]) -> Iterator[Landing]:
        """Read every request's entity concurrently under one throttle budget, and hand each batch over as
        soon as its reads are done while the others keep reading, so the caller loads one entity while the
        next is still in flight. An entity comes after its parent entity of the same call (its lines after
        their header). A failed request comes with its error; this never raises for one.

        Each batch is sealed by the thread that ends its last read, not by the caller: a caller that stops
        early (its load failed) still leaves every batch of the call landed or failed, so a replay can load
        the ones read completely without asking F&O again.
        """
        clock = time.monotonic()
        runner = QueryRunner(self._client, self._fo.odata_root, clock + self._fo.deadline_s)
        threads = THREADS_PER_REQUEST * self._fo.max_concurrency
        with runner, ThreadPoolExecutor(threads, thread_name_prefix="fo-extract") as pool:
            self._prefetch(requests)
            jobs = [self._job(request, runner) for request in requests]
            link_headers(jobs)
            sealed: queue.SimpleQueue[tuple[int, Landing | BaseException]] = queue.SimpleQueue()
            # Lines wait for their headers: submitting them last means every header is already
            # running or done when a line worker waits, so the pool cannot deadlock.
            for position, job in sorted(enumerate(jobs), key=lambda pair: pair[1].mode == "lines"):
                if not job.sink.failed:
                    self._submit(job, pool, runner)
                self._seal_when_read(position, job, sealed)
            order: ParentsFirst[Landing] = ParentsFirst([request.spec for request in requests])
            try:
                for _ in jobs:
                    position, landing = sealed.get()
                    if isinstance(landing, BaseException):
                        raise landing
                    for ready in order.add(position, landing):
                        self._seconds += time.monotonic() - clock
                        yield ready
                        clock = time.monotonic()
            finally:
                pool.shutdown()
                # A read's future holds its sealing callback, which holds the job: without this the cycle
                # keeps every job's pages and header keys alive until the garbage collector finds it.
                for job in jobs:
                    job.futures.clear()
            self._seconds += time.monotonic() - clock

    def _seal_when_read(self, position: int, job: Extraction,
                        sealed: queue.SimpleQueue[tuple[int, Landing | BaseException]]) -> None:
        """Seal ``job``'s batch in the thread that ends its last read (now if it has none) and queue it."""
        units = job.units()
        left = [max(len(units), 1)]
        lock = threading.Lock()

        def seal(_: object = None) -> None:
            with lock:
                left[0] -= 1
                if left[0] > 0:
                    return
            try:
                sealed.put((position, Landing(job.request, self._finish(job), job.sink.error)))
            except BaseException as error:  # the caller must hear of it, or it would wait forever
                sealed.put((position, error))

        if not units:
            seal()
        for unit in units:
            unit.add_done_callback(seal)

    # -- planning -------------------------------------------------------------------------------------

    def _prefetch(self, requests: Sequence[ExtractRequest]) -> None:
        names = []
        for request in requests:
            spec = request.spec
            names += [spec.entity_set, *(n for n in (spec.parent and spec.parent.entity_set,
                                                     spec.company_lookup and spec.company_lookup.entity_set) if n)]
        try:
            self._metadata.prefetch(names)
        except FoError as error:  # each request meets it again when planned, and fails with it
            self._log.warning("the tenant's metadata could not be read: %s", error)

    def _mode(self, request: ExtractRequest) -> ReadMode:
        spec = request.spec
        if request.lookups is not None:
            return "keys"
        if spec.parent and spec.parent.inherit:
            return "lines"  # they land only with their header's columns, whatever the window
        if request.window is None:
            return "snapshot"
        return self._catalog.mode_of(spec)

    def _job(self, request: ExtractRequest, runner: QueryRunner) -> Extraction:
        """The extraction of one request; a request that cannot be planned gets a failed batch."""
        spec, mode = request.spec, self._mode(request)
        companies = self._companies(request, mode)
        window = [d.isoformat() for d in request.window] if request.window and mode in ("window", "lines") else None
        # Lines read for every company at once still land per company (their headers').
        landed = [c for c in companies if c] or (list(request.companies or self._fo.legal_entities)
                                                 if spec.company_field and mode == "lines" else [])
        manifest = Manifest(
            batch_id=new_batch_id(), entity_set=spec.entity_set, table=spec.table, run_id=self._run_id,
            mode=mode, key_columns=list(spec.key_columns), company_field=spec.company_field,
            companies=landed, window=window,
        )
        writer = self._ledger.new_writer(manifest)
        try:
            plan, header, company_ids = self._plan(request, mode, runner)
        except FoError as error:
            failed = BatchBuilder(writer, EntityPlan(spec, EntitySchema(spec.entity_set, "", spec.keys, ()), ()),
                                  self._settings.dimensions)
            failed.fail(error)
            return Extraction(request, mode, failed.plan, failed, companies)
        sink = BatchBuilder(writer, plan, self._settings.dimensions)
        return Extraction(request, mode, plan, sink, companies, company_ids, header,
                          keys={c: [] for c in companies})

    def _companies(self, request: ExtractRequest, mode: ReadMode) -> tuple[str | None, ...]:
        spec = request.spec
        if mode == "keys":
            if spec.company_field is None:
                return (None,)
            return tuple(dict.fromkeys(c.lower() if c else None for c, _ in request.lookups or ()))
        if spec.company_field is None or (mode == "lines" and spec.company_filter_field is None):
            return (None,)  # shared, or lines read for every company's headers at once
        return tuple(c.lower() for c in (request.companies or self._fo.legal_entities))

    def _plan(self, request: ExtractRequest, mode: ReadMode, runner: QueryRunner
              ) -> tuple[EntityPlan, Header | None, Mapping[str, int]]:
        spec = request.spec
        problems = mismatches(spec, self._metadata.entity)
        if problems:
            raise SchemaError("the catalog entry does not match the tenant's metadata: " + "; ".join(problems),
                              entity_set=spec.entity_set)
        schema = self._metadata.entity(spec.entity_set)
        if mode == "keys":
            for _, pairs in request.lookups or ():
                for name, _value in pairs:
                    if schema.get(name) is None:
                        raise SchemaError(f"lookup field {name!r} does not exist in the tenant",
                                          entity_set=spec.entity_set)
            if spec.parent and spec.parent.inherit:
                raise SchemaError(f"lines are read with their {spec.parent.entity_set} header (their "
                                  f"{', '.join(spec.parent.inherit)} come from it): refresh the header instead",
                                  entity_set=spec.entity_set)
        companies = tuple(c.lower() for c in (request.companies or self._fo.legal_entities))
        company_ids = self._ids(spec, spec, companies, runner) if spec.company_lookup else {}
        header = None
        derived = []
        if spec.company_lookup and spec.company_field:
            derived.append(pa.field(spec.company_field, pa.string()))
        if mode == "lines" and spec.parent:
            header = self._header(spec, companies, runner)
            types = {f.name: f.type for f in (*header.plan.arrow_schema, *_derived_of(header))}
            derived += [pa.field(name, types[name]) for name in spec.parent.inherit if name in types]
        return plan_entity(spec, schema, tuple(derived)), header, company_ids

    def _header(self, lines: EntitySpec, companies: tuple[str, ...], runner: QueryRunner) -> Header:
        assert lines.parent is not None
        spec = self._catalog.spec_for(lines.parent.entity_set)
        problems = mismatches(spec, self._metadata.entity)
        if problems:
            raise SchemaError(f"its header entity {spec.entity_set} does not match the tenant's metadata: "
                              + "; ".join(problems), entity_set=lines.entity_set)
        schema = self._metadata.entity(spec.entity_set)
        fields = [n for n in (*header_columns(lines, spec), spec.company_filter_field) if n and schema.get(n)]
        plan = narrowed(plan_entity(spec, schema), fields)
        ids = self._ids(lines, spec, companies, runner) if spec.company_lookup else {}
        return Header(spec, plan, companies if spec.company_field else (None,), ids)

    def _ids(self, reader: EntitySpec, spec: EntitySpec, companies: tuple[str, ...], runner: QueryRunner
             ) -> dict[str, int]:
        """company -> the RecId that names it in the entity ``spec``'s company is looked up in (for ``reader``,
        the entity being planned, which a failure names)."""
        lookup = spec.company_lookup
        assert lookup is not None
        cached = self._company_ids.get(lookup.entity_set, {})
        if not set(companies) <= set(cached):
            target = self._catalog.spec_for(lookup.entity_set)
            plan = narrowed(plan_entity(target, self._metadata.entity(lookup.entity_set)),
                            [lookup.company_field, lookup.key])
            filter = query.any_of(*(query.company_filter(lookup.company_field, c) for c in companies))
            try:
                table, _ = runner.collect(plan, None, filter, self._totals)
            except FoError as error:
                raise FoError(f"its companies could not be looked up in {lookup.entity_set}: {error.reason}",
                              entity_set=reader.entity_set, url=error.url, status=error.status) from None
            cached = {**cached, **dict(zip(table.column(lookup.company_field).to_pylist(),
                                           table.column(lookup.key).to_pylist()))}
            self._company_ids[lookup.entity_set] = cached
        return cached

    # -- reading --------------------------------------------------------------------------------------

    def _submit(self, job: Extraction, pool: ThreadPoolExecutor, runner: QueryRunner) -> None:
        for company in job.companies:
            if job.mode == "lines":
                units = [pool.submit(self._guarded, job, company, read_lines, job, company, runner,
                                     self._lines_read(runner), self._parallelism(job))]
            else:
                try:
                    reads = self._reads(job, company)
                except FoError as error:  # a company it cannot select (one not in the tenant)
                    job.sink.fail(error)
                    continue
                units = [pool.submit(self._guarded, job, company, self._read, job, company, read.filter, runner,
                                     read.transform, read.scope, read.window)
                         for read in reads]
            job.futures[company] = units

    def _guarded(self, job: Extraction, company: str | None, read: Callable[..., None], *args: object) -> None:
        """Run one read of a request; failures fail the job's batch, never the pool."""
        try:
            read(*args)
        except Cancelled:
            pass
        except FoError as error:
            job.sink.fail(error)
        except Exception as error:  # a bug must fail the batch, not leave it half-landed and "extracting"
            self._log.exception("unexpected failure reading %s for %s", job.plan.spec.entity_set, company)
            job.sink.fail(FoError(f"unexpected {type(error).__name__}: {error}", entity_set=job.plan.spec.entity_set,
                                  company=company))

    def _read(self, job: Extraction, company: str | None, filter: str | None, runner: QueryRunner,
              transform: Transform | None = None, scope: bool = True, window: Window | None = None) -> None:
        result = runner.run(job.plan, company, filter, self._writer(job, company, transform), job.sink.counters,
                            lambda: job.sink.failed, prove=scope)
        job.sink.query(result.url)
        if scope:
            job.sink.record(result, window)

    def _lines_read(self, runner: QueryRunner) -> Callable[..., None]:
        def read(job: Extraction, company: str | None, filter: str | None, transform: Transform | None) -> None:
            self._read(job, company, filter, runner, transform)
        return read

    def _reads(self, job: Extraction, company: str | None) -> list[Read]:
        """Every query of one company."""
        request, spec = job.request, job.plan.spec
        clause = company_clause(spec, company, job.company_ids)
        if job.mode == "keys":
            shared = spec.company_field is None
            groups = [pairs for c, pairs in request.lookups or () if shared or (c.lower() if c else None) == company]
            exact = _exact(job, groups)
            return [Read(f, exact, scope=False) for f in key_filters(job.plan, clause, groups)]
        if job.mode == "window" and request.window:
            start, end = request.window
            window, changed = job.plan.field(spec.window_field or ""), spec.changed_field
            # A window of several days (a backfill) is read as several sub-windows at once, within the
            # throttle budget (see MIN_SUBWINDOW_DAYS): as many per company as requests may be in flight,
            # so the companies' reads fill the budget in whole rounds and no last read runs alone.
            parts = min(self._fo.max_concurrency, (end - start).days // MIN_SUBWINDOW_DAYS)
            outside = query.any_of(f"{window.name} lt {query.day_bound(start, window)}",
                                   f"{window.name} ge {query.day_bound(end, window)}")
            # Split, a record dated in one sub-window and changed in another would be read twice: the
            # changed records a sub-window reads are those dated outside the whole window.
            moved = outside if parts > 1 else None
            reads = [
                Read(query.and_all(clause, query.any_of(
                    query.window_filter(window, first, last),
                    query.and_all(query.window_filter(job.plan.field(changed), first, last), moved) if changed else None,
                )), window=(first, last))
                for first, last in query.split_window(start, end, parts)
            ]
            if spec.open_states:
                # Open records dated outside the window (those inside were just read).
                status = job.plan.field(spec.open_states.field)
                reads.append(Read(query.and_all(clause, query.not_in(status, spec.open_states.finished), outside),
                                  scope=False))
            return reads
        return [Read(clause)]

    def _parallelism(self, job: Extraction) -> int:
        """Concurrent reads per company that keep every worker busy: the budget still bounds requests."""
        return -(-self._fo.max_concurrency // len(job.companies))

    def _writer(self, job: Extraction, company: str | None, transform: Transform | None):
        def on_page(page: DecodedPage, url: str, extracted_at: dt.datetime) -> None:
            if transform is not None:
                page = transform(page)
            landed = job.sink.write(page, url, company, extracted_at, job.day_lookups.get(company))
            if job.key_fields:
                job.keys[company].append(landed.select(list(job.key_fields)))
        return on_page

    # -- finishing ------------------------------------------------------------------------------------

    def _finish(self, job: Extraction) -> LandedBatch:
        request, spec = job.request, job.plan.spec
        scopes: list[DeleteScope] = []
        parents = None
        if job.mode == "window" and request.window:
            start, end = (d.isoformat() for d in request.window)
            scopes = [DeleteScope("window", c, spec.window_field, start, end) for c in job.companies
                      if self._complete(job, c)]
        elif job.mode == "snapshot":
            scopes = [DeleteScope("company", c) for c in job.companies if self._complete(job, c)]
        elif job.mode == "lines" and self._complete(job, None):
            tables = [t for c in job.companies for t in job.keys.get(c, [])]
            parents = pa.concat_tables(tables) if tables else None
            scopes = [DeleteScope("parents")]
        self._totals.add(**job.sink.counters.as_dict())
        if job.sink.unexpected:
            self._log.warning("%s sent fields its cached metadata does not list (%s): the metadata is refreshed "
                              "on the next run", spec.entity_set, ", ".join(sorted(job.sink.unexpected)))
            self._metadata.invalidate()
        batch = job.sink.finish(scopes, parents)
        manifest = batch.manifest
        self._log.info("%s: %s, %d rows, %d pages, %d requests (batch %s)", spec.entity_set, manifest.status,
                       manifest.row_count, manifest.stats["pages"], manifest.stats["requests"], manifest.batch_id)
        if manifest.stats.get("lines_without_header"):
            self._log.info("%s: %d lines of headers outside this read were not landed (they land with their "
                           "headers)", spec.entity_set, manifest.stats["lines_without_header"])
        return batch

    def _complete(self, job: Extraction, company: str | None) -> bool:
        if job.sink.complete(company):
            return True
        self._log.warning("%s%s: a read of several pages returned a different number of rows than F&O counts "
                          "for it (rows changed while paging): no deletes are flagged for it this run",
                          job.plan.spec.entity_set, f" ({company})" if company else "")
        return False

    def _fetch(self, url: str, entity_set: str | None, accept: str) -> bytearray:
        return self._client.get(url, ReadTarget(entity_set), self._totals, time.monotonic() + self._fo.deadline_s, accept)


def _derived_of(header: Header) -> list[pa.Field]:
    spec = header.spec
    return [pa.field(spec.company_field, pa.string())] if spec.company_lookup and spec.company_field else []


def _exact(job: Extraction, groups: list[tuple[tuple[str, str], ...]]) -> Transform | None:
    """Keep only exact matches when a looked-up text holds ``*``, which F&O reads as a wildcard."""
    typed = [[(job.plan.field(name), value) for name, value in group] for group in groups]
    if not any("*" in str(value) for group in typed for field, value in group if field.kind == "string"):
        return None

    def keep(page: DecodedPage) -> DecodedPage:
        return page.with_table(exact_matches(page.table, typed))

    return keep
