"""The extraction engine the Dagster assets call: extract requests in, landed batches out.

One ``Extractor`` per run holds one keep-alive client and draws from the environment's shared throttle
budget. ``extract`` checks every request against the tenant's metadata first (nothing lands when a
catalog entry does not match), then reads companies and entities concurrently on a thread pool,
streaming each page straight into its batch's Parquet parts: memory stays at a few pages per worker.

Modes: ``window`` reads ``[start, end)`` per company; ``snapshot`` reads the whole entity per company
(shared entities once); ``lines`` reads the lines of the headers in the window (reusing the header
batch of the same call when there is one, otherwise reading just the header keys) by chunked key
filters; ``keys`` (any request with lookups) reads the named records and never deletes anything.
A windowed entity or a line entity asked for without a window is read whole per company (the full
history of a reconciliation), like a snapshot. Each completely read scope becomes a ``DeleteScope``;
a batch with any failed read lands nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

import pyarrow as pa

from fo_assets.catalog import EntitySpec, spec_for
from fo_assets.dynamics import query
from fo_assets.dynamics.auth import TokenProvider
from fo_assets.dynamics.batches import BatchSink
from fo_assets.dynamics.errors import FoError, SchemaError
from fo_assets.dynamics.metadata import MetadataStore, folder_for
from fo_assets.dynamics.decode import DecodedPage
from fo_assets.dynamics.jobs import Job, link_headers
from fo_assets.dynamics.odata import ODataClient, RetryPolicy, Target
from fo_assets.dynamics.reading import (
    Cancelled,
    OnPage,
    QueryRunner,
    count_rows,
    key_filters,
    narrowed,
    rows_as_groups,
)
from fo_assets.dynamics.schema import EntityPlan, plan_entity
from fo_assets.dynamics.throttle import Counters, budget_for
from fo_assets.landing import DeleteScope, LandedBatch, Ledger, Manifest, Mode, SharedFolder, new_batch_id
from fo_assets.settings import Settings

Lookup = tuple[str | None, tuple[tuple[str, str], ...]]

# The shortest sub-window a windowed read is split into. A daily run, a week or a month of backfill is
# one query per company: the companies keep requests in flight, and splitting would add a part-filled
# page per sub-window (a month of ledger in three companies: 108 pages instead of 102, and on two cores
# 10% slower, with three times the pages in memory at once).
MIN_SUBWINDOW_DAYS = 28


@dataclass(frozen=True)
class ExtractRequest:
    spec: EntitySpec
    window: tuple[dt.date, dt.date] | None = None  # [start, end) for windowed entities and lines; None: all
    lookups: tuple[Lookup, ...] | None = None  # keyed pull: (company, ((field, value), ...))
    companies: tuple[str, ...] | None = None  # default: the settings' legal entities

    @property
    def mode(self) -> Mode:
        if self.lookups is not None:
            return "keys"
        # No window on a windowed entity or on lines: the full history, read like a snapshot.
        return self.spec.mode if self.window is not None else "snapshot"


class ExtractError(FoError):
    """Some requests failed; ``batches`` holds every batch in request order (failed ones not loadable)."""

    def __init__(self, failures: list[FoError], batches: list[LandedBatch]):
        shown = "; ".join(str(f) for f in failures[:3])
        more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
        super().__init__(f"{len(failures)} of {len(batches)} extractions failed: {shown}{more}")
        self.failures = failures
        self.batches = batches


class Extractor:
    def __init__(self, settings: Settings, run_id: str, log: logging.Logger | None = None,
                 policy: RetryPolicy | None = None, ledger: Ledger | None = None):
        self._settings = settings
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
        self._totals = Counters()
        self._seconds = 0.0

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    @property
    def stats(self) -> dict:
        return {**self._totals.as_dict(), "seconds": round(self._seconds, 3)}

    def extract(self, requests: Sequence[ExtractRequest]) -> list[LandedBatch]:
        started = time.monotonic()
        try:
            self._metadata.prefetch([name for r in requests for name in (r.spec.entity_set, r.spec.parent) if name])
            plans = [self._plan(r) for r in requests]  # every mismatch surfaces before anything lands
            jobs = [self._job(r, plan, parent) for r, (plan, parent) in zip(requests, plans)]
            link_headers(jobs)
            runner = QueryRunner(self._client, self._fo.odata_root, started + self._fo.deadline_s)
            with runner, ThreadPoolExecutor(self._fo.max_concurrency, thread_name_prefix="fo-extract") as pool:
                # Lines wait for their headers: submitting them last means every header is already
                # running or done when a line worker waits, so the pool cannot deadlock.
                for job in sorted(jobs, key=lambda j: j.request.mode == "lines"):
                    for company in job.companies:
                        if job.request.mode == "lines":
                            units = [pool.submit(self._guarded, job, company, self._read_lines, job, company, runner)]
                        else:
                            units = [pool.submit(self._guarded, job, company, self._read, job, company, f, runner)
                                     for f in self._filters(job, company)]
                        job.futures[company] = units
                for job in jobs:
                    for units in job.futures.values():
                        wait(units)
            batches = [self._finish(job) for job in jobs]
        finally:
            self._seconds += time.monotonic() - started
        failures = [job.sink.error for job in jobs if job.sink.error is not None]
        if failures:
            raise ExtractError(failures, batches)
        return batches

    def count(self, spec: EntitySpec, company: str | None, window: tuple[dt.date, dt.date] | None = None,
              batch: LandedBatch | None = None) -> int:
        """How many rows F&O holds for one company of what a batch read, by ``$count`` (reconciliation).

        Lines count those of the batch's recorded parents (``scope/parents.parquet``), like they were read.
        """
        plan = plan_entity(spec, self._metadata.entity(spec.entity_set))
        parents = batch.parents_path if spec.parent and batch is not None else None
        return count_rows(self._client, self._fo.odata_root, plan, company, window, parents, self._totals,
                          time.monotonic() + self._fo.deadline_s)

    def _plan(self, request: ExtractRequest) -> tuple[EntityPlan, EntityPlan | None]:
        spec = request.spec
        if request.window and request.window[1] <= request.window[0]:
            raise ValueError(f"{spec.entity_set}: empty window {request.window[0]} to {request.window[1]}")
        plan = plan_entity(spec, self._metadata.entity(spec.entity_set))
        for _, pairs in request.lookups or ():
            for name, _value in pairs:
                if plan.schema.get(name) is None:
                    raise SchemaError(f"lookup field {name!r} does not exist in the tenant", entity_set=spec.entity_set)
        parent = None
        if request.mode == "lines":
            parent_spec = spec_for(spec.parent or "")
            parent = plan_entity(parent_spec, self._metadata.entity(parent_spec.entity_set))
            missing = [k for k in spec.parent_keys if parent.schema.get(k) is None]
            if missing:
                raise SchemaError(f"parent key fields {missing} do not exist in {parent_spec.entity_set}",
                                  entity_set=spec.entity_set)
        return plan, parent

    def _job(self, request: ExtractRequest, plan: EntityPlan, parent: EntityPlan | None) -> Job:
        spec = request.spec
        companies: tuple[str | None, ...]
        if spec.company_field is None:
            companies = (None,)
        elif request.lookups is not None:
            companies = tuple(dict.fromkeys(c.lower() if c else None for c, _ in request.lookups))
        else:
            companies = tuple(c.lower() for c in (request.companies or self._fo.legal_entities))
        window = [d.isoformat() for d in request.window] if request.window and request.mode != "snapshot" else None
        manifest = Manifest(
            batch_id=new_batch_id(), entity_set=spec.entity_set, table=spec.table, run_id=self._run_id,
            mode=request.mode, key_columns=list(spec.key_columns), company_field=spec.company_field,
            companies=[c for c in companies if c], window=window,
        )
        sink = BatchSink(self._ledger.new_writer(manifest), plan, self._settings.dimensions)
        return Job(request, plan, sink, companies, parent, keys={c: [] for c in companies})

    def _guarded(self, job: Job, company: str | None, read: Callable[..., None], *args: object) -> None:
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

    def _read(self, job: Job, company: str | None, filter: str | None, runner: QueryRunner) -> None:
        runner.run(job.plan, company, filter, self._writer(job, company), job.sink.counters,
                   lambda: job.sink.failed, job.sink.query)

    def _filters(self, job: Job, company: str | None) -> list[str | None]:
        request, spec = job.request, job.plan.spec
        if request.lookups is not None:
            shared = spec.company_field is None
            groups = [pairs for c, pairs in request.lookups if shared or (c.lower() if c else None) == company]
            return list(key_filters(job.plan, company, groups))
        company_clause = query.company_filter(spec.company_field, company) if company and spec.company_field else None
        if request.mode == "window" and request.window:
            start, end = request.window
            # A long window (a backfill) is read as several sub-windows at once: on F&O, as on any
            # remote server, throughput comes from concurrent requests, within the throttle budget. Each
            # sub-window ends on a part-filled page, one more request, so only long ones are split.
            parts = min(self._parallelism(job), (end - start).days // MIN_SUBWINDOW_DAYS)
            return [query.and_all(company_clause, query.window_filter(spec.window_field or "", first, last))
                    for first, last in query.split_window(start, end, parts)]
        return [company_clause]

    def _parallelism(self, job: Job) -> int:
        """Concurrent reads per company that keep every worker busy: the budget still bounds requests."""
        return -(-self._fo.max_concurrency // len(job.companies))

    def _writer(self, job: Job, company: str | None) -> OnPage:
        def on_page(page: DecodedPage, url: str, extracted_at: dt.datetime) -> None:
            job.sink.write(page, url, company, extracted_at)
            if job.key_fields:
                job.keys[company].append(page.table.select(list(job.key_fields)))
        return on_page

    def _read_lines(self, job: Job, company: str | None, runner: QueryRunner) -> None:
        spec, parent = job.plan.spec, job.parent
        assert parent is not None and job.request.window is not None
        parent_company = parent.spec.company_field
        key_fields = ([parent_company] if parent_company else []) + list(spec.parent_keys)
        if job.header is not None:
            wait(job.header.futures[company])
            if job.header.sink.error is not None:
                raise FoError(f"the {parent.spec.entity_set} read failed, so its lines were not read: "
                              f"{job.header.sink.error.reason}", entity_set=spec.entity_set, company=company)
            tables = [t.select(key_fields) for t in job.header.keys.get(company, [])]
            parents = pa.concat_tables(tables) if tables else narrowed(parent, key_fields).arrow_schema.empty_table()
        else:
            window = query.window_filter(parent.spec.window_field or "", *job.request.window)
            clause = query.company_filter(parent_company, company) if company and parent_company else None
            parents = runner.collect(narrowed(parent, key_fields), company, query.and_all(clause, window),
                                     job.sink.counters, lambda: job.sink.failed, job.sink.query)
        if parent_company and spec.company_field and parent_company != spec.company_field:
            parents = parents.rename_columns([spec.company_field, *spec.parent_keys])
        job.keys[company] = [parents]
        filters = key_filters(job.plan, company, rows_as_groups(parents, spec.parent_keys))
        # A backfill's headers make hundreds of key chunks: read them concurrently like sub-windows
        # (a pool of its own, as waiting on the outer pool from inside it could deadlock).
        with ThreadPoolExecutor(self._parallelism(job), thread_name_prefix="fo-lines") as chunks:
            for done in [chunks.submit(self._read, job, company, f, runner) for f in filters]:
                done.result()

    def _finish(self, job: Job) -> LandedBatch:
        request, spec = job.request, job.plan.spec
        scopes: list[DeleteScope] = []
        parents = None
        if request.mode == "window" and request.window:
            start, end = (d.isoformat() for d in request.window)
            scopes = [DeleteScope("window", c, spec.window_field, start, end) for c in job.companies]
        elif request.mode == "snapshot":
            scopes = [DeleteScope("company", c) for c in job.companies]
        elif request.mode == "lines":
            scopes = [DeleteScope("parents")]
            tables = [t for c in job.companies for t in job.keys.get(c, [])]
            parents = pa.concat_tables(tables) if tables else None
        self._totals.add(**job.sink.counters.as_dict())
        if job.sink.unexpected:
            self._log.warning("%s sent fields its cached metadata does not list (%s): the metadata is refreshed "
                              "on the next run", spec.entity_set, ", ".join(sorted(job.sink.unexpected)))
            self._metadata.invalidate()
        batch = job.sink.finish(scopes, parents)
        manifest = batch.manifest
        self._log.info("%s: %s, %d rows, %d pages, %d requests (batch %s)", spec.entity_set, manifest.status,
                       manifest.row_count, manifest.stats["pages"], manifest.stats["requests"], manifest.batch_id)
        return batch

    def _fetch(self, url: str, entity_set: str | None, accept: str) -> bytearray:
        return self._client.get(url, Target(entity_set), self._totals, time.monotonic() + self._fo.deadline_s, accept)

