"""The weekly reconciliation: every entity read by day is re-read whole, per company.

A daily run reads a trailing window, so a status change or a delete on a record dated long ago is
invisible to it; the reconciliation catches those and flags deletes per company. It goes through the same
extraction and load path as a run, but it is not a materialization of every day since the start (a year
of history would rewrite 365 days of every entity each week and grow the event log by tens of MB): each
entity gets one observation saying what the reconciliation read and changed, and its table check.
Entities read whole every day need no reconciliation.
"""

from collections.abc import Sequence

import dagster as dg

from fo_assets import checks
from fo_assets.catalog import Catalog
from fo_assets.dynamics.extract import ExtractError, ExtractRequest
from fo_assets.keys import entity_key
from fo_assets.loading import load_metadata, upsert_batch
from fo_assets.resources import FoRuntime

RECONCILIATION_JOB = "fo_reconciliation"


def build_reconciliation_job(catalog: Catalog, pool: str, prefix: Sequence[str] = ()) -> dg.JobDefinition:
    """The job that re-reads by-day entities whole and flags what F&O no longer returns."""
    specs = [spec for spec in catalog if catalog.mode_of(spec) != "snapshot"]

    @dg.op(pool=pool, tags={"kind": "dynamics365"})
    def reconcile(context: dg.OpExecutionContext, fo: FoRuntime) -> None:
        """Re-read the whole history of every entity read by day and upsert it, flagging deletes."""
        with fo.extractor(context.run_id, context.log) as extractor:
            try:
                batches, failure = extractor.extract([ExtractRequest(spec) for spec in specs]), None
            except ExtractError as exc:
                batches, failure = exc.batches, exc
        for spec, batch in zip(specs, batches):
            if batch.manifest.status != "landed":
                continue
            result = upsert_batch(fo.sink, fo.ledger, batch, spec)
            key = entity_key(spec, prefix)
            context.log_event(dg.AssetObservation(
                asset_key=key, metadata={**load_metadata(batch, result), "fo/reconciliation": True},
            ))
            table = checks.keys_unique(fo, spec, key)
            # log_event takes check evaluations at run time; Dagster 1.13's annotation omits them.
            context.log_event(dg.AssetCheckEvaluation(  # type: ignore[arg-type]
                asset_key=key, check_name=checks.KEYS_UNIQUE, passed=table.passed, metadata=table.metadata,
                blocking=True,
            ))
        if failure is not None:
            raise failure

    @dg.job(name=RECONCILIATION_JOB, description="Re-reads the whole history of every entity read by day.")
    def reconciliation() -> None:
        reconcile()

    return reconciliation
