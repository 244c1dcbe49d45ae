"""Replaying landed batches from the ledger (no F&O calls), and telling Dagster about each load.

A replay loads a batch through the same path as a run (``upsert_batch``). When the Dagster instance that
ran the batch is at hand (``DAGSTER_HOME``), each load is recorded as a materialization of the entity on
the partitions that run covered, so the UI shows them loaded rather than failed. Checks are not re-run
on a replay: the next run evaluates them.
"""

from __future__ import annotations

from typing import Callable, Sequence

import dagster as dg

from fo_assets.catalog import Catalog, EntitySpec
from fo_assets.io_manager import load_metadata, upsert_batch
from fo_assets.keys import entity_key
from fo_assets.landing import LandedBatch, Ledger
from fo_assets.partitions import run_partition_keys
from fo_assets.sinks.base import LoadResult, Sink


class DagsterRecord:
    """Records replayed loads in the instance whose runs landed them."""

    def __init__(self, instance: dg.DagsterInstance, prefix: Sequence[str] = ()):
        self.instance, self.prefix = instance, tuple(prefix)

    def __call__(self, batch: LandedBatch, spec: EntitySpec, result: LoadResult) -> str:
        """Record a replayed load on the partitions of the run that landed the batch; says what it did."""
        run_id = batch.manifest.run_id
        run = self.instance.get_run_by_id(run_id)
        if run is None:
            return f"run {run_id} is not in this Dagster instance: not recorded"
        keys = run_partition_keys(dict(run.tags))
        if not keys:
            return f"run {run_id} had no partitions: not recorded"
        metadata = {**load_metadata(batch, result), "fo/replayed_from_run": run_id}
        for key in keys:
            self.instance.report_runless_asset_event(
                dg.AssetMaterialization(asset_key=entity_key(spec, self.prefix), partition=key, metadata=metadata)
            )
        return f"recorded in Dagster on {len(keys)} partition(s) of run {run_id}"


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
