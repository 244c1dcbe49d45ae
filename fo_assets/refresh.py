"""The targeted-refresh job: re-read the records Business Events named, by key, and upsert them.

Events are stubs, so the records are read back over OData; the lines of a re-read header are re-read with
it. The records go through the same load path as a run (fo_assets/loading.py) and the table check that
guards the model (``keys_unique``) runs after them. A refresh is recorded as what it is: an observation of
the days its records belong to (how many records, which events, which batch), not a materialization of
whole days. So partition status, freshness and the model's trigger only move with real loads.

Refresh runs have a pool of their own and a higher priority: a one-record pull must not queue behind an
hours-long backfill (README, "Pools").
"""


import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

import dagster as dg
import pyarrow.parquet as pq

from fo_assets import checks
from fo_assets.catalog import Catalog, EntitySpec
from fo_assets.dynamics.extract import ExtractRequest
from fo_assets.keys import entity_key
from fo_assets.landing import LandedBatch
from fo_assets.loading import load_metadata, upsert_batch
from fo_assets.resources import FoRuntime

FieldValues = tuple[tuple[str, str], ...]  # ((field, value), ...)
REFRESH_JOB = "fo_targeted_refresh"
# Dequeued before ordinary runs (Dagster's queued run coordinator orders by this tag).
REFRESH_PRIORITY = "10"
SHOWN_EVENT_IDS = 10


class RecordTarget(dg.Config):
    """One record to re-read: entity set, company and key values."""
    entity_set: str
    company: str | None
    lookup: dict[str, str]


class RefreshConfig(dg.Config):
    """A targeted refresh: the events that asked for it and the records to re-read."""
    event_ids: list[str]
    targets: list[RecordTarget]


def _requests(catalog: Catalog, targets: list[RecordTarget]) -> list[ExtractRequest]:
    grouped: dict[str, list[tuple[str | None, FieldValues]]] = defaultdict(list)
    for target in targets:
        grouped[target.entity_set].append((target.company, tuple(sorted(target.lookup.items()))))
    return [
        ExtractRequest(catalog.spec_for(entity_set), lookups=tuple(dict.fromkeys(lookups)))
        for entity_set, lookups in grouped.items()
    ]


def _child_request(child: EntitySpec, parent: EntitySpec, batch: LandedBatch) -> ExtractRequest | None:
    """Lines of the headers just re-read, looked up by the join fields' values found in the header batch."""
    assert child.parent is not None
    pairs = [(line, header) for line, header in child.parent.join if line != child.company_field]
    columns = list(dict.fromkeys([*([parent.company_field] if parent.company_field else []),
                                  *(header for _, header in pairs)]))
    lookups: dict[tuple[str | None, FieldValues], None] = {}
    for path in batch.part_paths:
        for row in pq.read_table(path, columns=columns).to_pylist():
            company = row[parent.company_field] if parent.company_field else None
            lookups[(company, tuple((line, str(row[header])) for line, header in pairs))] = None
    return ExtractRequest(child, lookups=tuple(lookups)) if lookups else None


def _days(batch: LandedBatch, existing: set[str]) -> dict[str, int]:
    """Records per existing daily partition, from the batch's own day counts."""
    return {day: rows for day, rows in batch.manifest.rows_by_day.items() if day in existing}


def event_metadata(event_ids: list[str]) -> dict[str, object]:
    """The events behind a refresh, for its observations: a run may coalesce thousands of them, and each
    observation is stored in the event log, so only the first few ids are named (all are in the run log)."""
    shown = ", ".join(event_ids[:SHOWN_EVENT_IDS])
    more = len(event_ids) - SHOWN_EVENT_IDS
    return {"fo/events": len(event_ids), "fo/event_ids": shown + (f" and {more} more" if more > 0 else "")}


def build_refresh_job(
    partitions_def: dg.PartitionsDefinition, pool: str, prefix: Sequence[str] = ()
) -> dg.JobDefinition:
    """The job that re-reads the records Business Events named and upserts them."""
    @dg.op(pool=pool, tags={"kind": "dynamics365"})
    def refresh_records(context: dg.OpExecutionContext, config: RefreshConfig, fo: FoRuntime) -> None:
        """Re-read the named records (and their lines) from F&O and upsert them into their tables."""
        catalog = fo.settings.catalog
        context.log.info(f"{len(config.event_ids)} event(s): {', '.join(config.event_ids)}")
        requests = _requests(catalog, config.targets)
        with fo.extractor(context.run_id, context.log) as extractor:
            loaded = list(zip(requests, extractor.extract(requests)))
            children = [(child_request, request.spec) for request, batch in loaded
                        for child in catalog.children_of(request.spec.entity_set)
                        if (child_request := _child_request(child, request.spec, batch))]
            loaded += zip([r for r, _ in children], extractor.extract([r for r, _ in children]))
        existing = set(partitions_def.get_partition_keys(current_time=dt.datetime.now(dt.UTC)))
        header_days = {request.spec.entity_set: _days(batch, existing) for request, batch in loaded}
        for request, batch in loaded:
            spec = request.spec
            result = upsert_batch(fo.sink, fo.ledger, batch, spec)
            key = entity_key(spec, prefix)
            # Lines with no date of their own (purchase order lines) belong to their header's days.
            days = _days(batch, existing) or (header_days.get(spec.parent.entity_set, {}) if spec.parent else {})
            common = {**load_metadata(batch, result), **event_metadata(config.event_ids)}
            for day, rows in days.items():
                context.log_event(dg.AssetObservation(
                    asset_key=key, partition=day, metadata={**common, "fo/records_refreshed": rows},
                ))
            table = checks.keys_unique(fo, spec, key)
            # log_event takes check evaluations at run time; Dagster 1.13's annotation omits them.
            context.log_event(dg.AssetCheckEvaluation(  # type: ignore[arg-type]
                asset_key=key, check_name=checks.KEYS_UNIQUE, passed=table.passed, metadata=table.metadata,
                blocking=True,
            ))
            context.log.info(f"{spec.entity_set}: {batch.manifest.row_count} record(s) re-read and upserted")

    @dg.job(name=REFRESH_JOB, description="Re-reads the F&O records named by Business Events.",
            tags={"dagster/priority": REFRESH_PRIORITY})
    def targeted_refresh() -> None:
        refresh_records()

    return targeted_refresh
