"""One extract request's landing: decoded pages from many threads into one BatchWriter.

Each company (and each key chunk) of a request is read by its own worker; their pages meet here, get
their derived columns (the company of an entity whose company comes from another entity) and their
dimension columns, and are appended. The dimension split runs in the worker (Arrow releases the GIL),
only the Parquet append is serialised. The first failure of any worker fails the whole batch: it is never
loaded and flags nothing, and the other workers of the request stop at their next page.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fo_assets.dynamics.decode import DecodedPage
from fo_assets.dynamics.dimensions import add_dimension_columns, dimension_fields
from fo_assets.dynamics.errors import FoError
from fo_assets.dynamics.reading import QueryResult
from fo_assets.dynamics.schema import EntityPlan
from fo_assets.dynamics.throttle import Counters
from fo_assets.landing import BatchWriter, DeleteScope, LandedBatch
from fo_assets.settings import DimensionFormats

# A manifest lists the first URL of each query; line reads can run thousands of key chunks, so only the
# first ones are kept (the count is in the stats), and at most this many incomplete ones per company.
MAX_LISTED_QUERIES = 50
MAX_LISTED_INCOMPLETE = 10


class BatchBuilder:
    """Turns decoded pages into a landed batch: splits dimensions, counts rows and writes the parts."""
    def __init__(self, writer: BatchWriter, plan: EntityPlan, formats: DimensionFormats):
        self.writer = writer
        self.plan = plan
        self.counters = Counters()
        self.error: FoError | None = None
        self.unexpected: set[str] = set()
        self._formats = formats
        self._lock = threading.Lock()
        self._queries = 0
        self._unparseable = 0
        self._without_header = 0
        self._started = time.monotonic()
        present = set(plan.select_names)
        fields = [*plan.arrow_schema, *plan.derived, *dimension_fields(plan.spec.dimensions, formats, present)]
        manifest = writer.manifest
        manifest.schema = [{"name": f.name, "type": str(f.type)} for f in fields]
        manifest.removed_fields = list(plan.removed_fields)

    @property
    def failed(self) -> bool:
        """True once a request of this batch has failed."""
        return self.error is not None

    def query(self, url: str) -> None:
        """Count a request of this batch and keep its URL (the first few) in the manifest."""
        with self._lock:
            self._queries += 1
            if len(self.writer.manifest.queries) < MAX_LISTED_QUERIES:
                self.writer.manifest.queries.append(url)

    def record(self, result: QueryResult, window: tuple[dt.date, dt.date] | None = None) -> None:
        """How one query of a delete scope ended (per company: a company with an incomplete read flags
        nothing), and the days it read, so each day's check can say whether its own read was complete."""
        with self._lock:
            reads: dict[str, Any] = self.writer.manifest.reads.setdefault(result.company or "", {
                "queries": 0, "rows": 0, "distinct": 0, "counted_queries": 0, "incomplete": [],
            })
            reads["queries"] += 1
            reads["incomplete_queries"] = reads.get("incomplete_queries", 0) + (not result.complete)
            reads["rows"] += result.rows
            reads["distinct"] += result.distinct
            reads["counted_queries"] += result.source_count is not None
            if not result.complete and len(reads["incomplete"]) < MAX_LISTED_INCOMPLETE:
                reads["incomplete"].append({
                    "url": result.url, "read": result.distinct, "source": result.source_count,
                    "days": [d.isoformat() for d in window] if window else None,
                })
            reads["complete"] = reads.get("complete", True) and result.complete

    def complete(self, company: str | None) -> bool:
        """Every recorded read of ``company`` (or of the whole batch, for None) was complete."""
        reads = self.writer.manifest.reads
        if company is None:
            return all(r.get("complete", True) for r in reads.values())
        return reads.get(company, {}).get("complete", True)

    def without_header(self, rows: int) -> None:
        """Count line rows dropped because their header was not read."""
        with self._lock:
            self._without_header += rows

    def write(self, page: DecodedPage, url: str, company: str | None, extracted_at: dt.datetime,
              day_lookup: pa.Table | None = None) -> pa.Table:
        """Append one page; returns its rows as landed (derived and dimension columns added).

        ``day_lookup`` gives lines that carry no date their header's day: the line's join fields and a
        ``_day`` column, so the batch counts rows per day either way."""
        table = page.table
        for field in self.plan.derived:
            if field.name not in table.column_names:  # the company of a read filtered to one company
                table = table.append_column(field, pa.repeat(pa.scalar(company, field.type), table.num_rows))
        table, unparseable = add_dimension_columns(table, self.plan.spec.dimensions, self._formats)
        with self._lock:
            if self.error is not None:
                return table
            self.unexpected |= page.unexpected
            self._unparseable += unparseable
            self.writer.write(table, url, extracted_at, company)
            days = self.writer.manifest.rows_by_day
            for day, rows in _rows_by_day(table, self.plan.day_column, day_lookup).items():
                days[day] = days.get(day, 0) + rows
        return table

    def fail(self, error: FoError) -> None:
        """Record the first failure: the batch is sealed as failed, never loadable."""
        with self._lock:
            if self.error is None:
                self.error = error

    def finish(self, scopes: list[DeleteScope], parents: pa.Table | None = None) -> LandedBatch:
        """Seal the batch, or mark it failed if any worker failed."""
        manifest = self.writer.manifest
        manifest.stats = {
            **self.counters.as_dict(),
            "queries": self._queries,
            "seconds": round(time.monotonic() - self._started, 3),
            "unparseable_dimensions": self._unparseable,
            "lines_without_header": self._without_header,
            "unexpected_fields": sorted(self.unexpected),
        }
        if manifest.mode == "lines":
            # What a header/line read costs: lines are read by key chunks or RecId ranges of the headers,
            # and a filter too small for its page would multiply requests (docs/fo-odata.md, "Filter size").
            requests = manifest.stats["requests"]
            manifest.stats["requests_per_1000_lines"] = round(1000 * requests / manifest.row_count, 2) \
                if manifest.row_count else float(requests)
        if self.error is not None:
            self.writer.fail(str(self.error))
            return self.writer.batch
        manifest.delete_scopes = scopes
        if parents is not None:
            self.writer.write_parents(parents)
        return self.writer.seal()


def _rows_by_day(table: pa.Table, day_column: str | None, day_lookup: pa.Table | None) -> dict[str, int]:
    if day_column and day_column in table.column_names:
        days = table.column(day_column)
    elif day_lookup is not None:
        keys = [name for name in day_lookup.column_names if name != "_day"]
        days = table.select(keys).join(day_lookup, keys=keys, use_threads=False).column("_day")
    else:
        return {}
    if pa.types.is_timestamp(days.type):  # an instant window field: the day it falls on in UTC
        days = pc.cast(pc.floor_temporal(days, unit="day"), pa.date32())
    return {row["values"].isoformat(): row["counts"] for row in pc.value_counts(days).to_pylist()
            if row["values"] is not None}
