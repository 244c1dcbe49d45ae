"""Replaying landed batches from the ledger (no F&O calls), and telling Dagster about each load.

A replay loads a batch through the same path as a run (``upsert_batch``). When the Dagster instance that
ran the batch is at hand (``DAGSTER_HOME``), each load is recorded as a materialization of the entity on
the partitions that run covered (each with its own row count), or on the table for an entity read
whole, so the UI shows them loaded rather than failed. Checks are not re-run
on a replay: the next run evaluates them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import dagster as dg

from fo_assets.catalog import Catalog, EntitySpec
from fo_assets.keys import entity_key
from fo_assets.landing import LandedBatch, Ledger
from fo_assets.loading import load_metadata, upsert_batch
from fo_assets.partitions import run_partition_keys
from fo_assets.sinks.base import LoadResult, Sink


class DagsterRecord:
    """Records replayed loads in the instance whose runs landed them, as those runs would have."""

    def __init__(self, instance: dg.DagsterInstance, catalog: Catalog, prefix: Sequence[str] = ()):
        self.instance, self.catalog, self.prefix = instance, catalog, tuple(prefix)

    def __call__(self, batch: LandedBatch, spec: EntitySpec, result: LoadResult) -> str:
        """Record a replayed load as the run that landed the batch would have; says what it did."""
        run_id = batch.manifest.run_id
        run = self.instance.get_run_by_id(run_id)
        if run is None:
            return f"run {run_id} is not in this Dagster instance: not recorded"
        key = entity_key(spec, self.prefix)
        metadata = {**load_metadata(batch, result), "fo/replayed_from_run": run_id}
        if self.catalog.mode_of(spec) == "snapshot":  # an unpartitioned asset: the table as a whole
            self.instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, metadata=metadata))
            return f"recorded in Dagster for run {run_id}"
        days = run_partition_keys(dict(run.tags))
        if not days:  # the weekly reconciliation: an observation, as the reconciliation itself records
            self.instance.report_runless_asset_event(dg.AssetObservation(asset_key=key, metadata=metadata))
            return f"recorded in Dagster as an observation of run {run_id}"
        for day in days:
            self.instance.report_runless_asset_event(dg.AssetMaterialization(
                asset_key=key, partition=day,
                metadata={**metadata, "dagster/partition_row_count": batch.manifest.rows_by_day.get(day, 0)},
            ))
        return f"recorded in Dagster on {len(days)} partition(s) of run {run_id}"


Record = Callable[[LandedBatch, EntitySpec, LoadResult], str]


def replay(catalog: Catalog, ledger: Ledger, sink: Sink, batches: list[LandedBatch], record: Record | None,
           report: Callable[[str, bool], None]) -> int:
    """Load each batch, report each outcome (``report(line, failed)``); returns how many failed again."""
    failures = 0
    for batch in batches:
        try:
            spec = catalog.spec_for(batch.manifest.entity_set)
            result = upsert_batch(sink, ledger, batch, spec)
        except Exception as exc:  # report every batch, then fail overall
            failures += 1
            report(f"{batch.batch_id} {batch.manifest.table}: FAILED again: {exc}", True)
            continue
        line = (f"{batch.batch_id} {batch.manifest.table}: inserted {result.inserted}, updated {result.updated}, "
                f"deleted {result.deleted}")
        report(f"{line}; {record(batch, spec, result)}" if record else line, False)
    return failures
