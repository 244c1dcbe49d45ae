"""Data checks on every entity asset, evaluated in the run that lands the data.

They are partitioned like the assets, so the UI shows each day's result next to each day's data.
``keys_unique`` guards the model (blocking): a table with duplicate or null keys must not be modeled.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Iterator, Sequence

import dagster as dg
# Not exported by Dagster 1.13 (pinned exactly), but the only way to tie a day's check to the day's data.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData as TargetMaterialization,
)

from fo_assets.catalog import Catalog, EntitySpec
from fo_assets.keys import entity_key
from fo_assets.landing import LandedBatch

if TYPE_CHECKING:
    from fo_assets.resources import FoRuntime

KEYS_UNIQUE = "keys_unique"
ROWS_MATCH_SOURCE = "rows_match_source"
SCHEMA_DRIFT = "schema_drift"
DIMENSIONS_PARSE = "dimensions_parse"
WINDOW_CLOSED = "window_closed"
# Above this share of unparseable dimension strings the dimension format setting is probably wrong.
MAX_UNPARSED_SHARE = 0.01


def entity_check_specs(
    catalog: Catalog, partitions_def: dg.PartitionsDefinition, prefix: Sequence[str] = ()
) -> list[dg.AssetCheckSpec]:
    specs = []
    for spec in catalog:
        key = entity_key(spec, prefix)

        def check(name: str, description: str, blocking: bool = False) -> dg.AssetCheckSpec:
            return dg.AssetCheckSpec(
                name, asset=key, description=description, blocking=blocking, partitions_def=partitions_def
            )

        specs += [
            check(KEYS_UNIQUE, f"Every live row of {spec.table} has a unique, non-null key "
                  f"({', '.join(spec.key_columns)}).", blocking=True),
            check(ROWS_MATCH_SOURCE, "Every read of several pages returned as many distinct keys as F&O's own "
                  "$count of the same query, so no row was skipped or repeated while paging (deletes are only "
                  "flagged where this holds)."),
            check(SCHEMA_DRIFT, "No field the table had was removed in the tenant (new fields are added as "
                  "columns automatically)."),
            check(WINDOW_CLOSED, "Every day of the run was read after it closed; a day read while still open "
                  "is provisional and is re-read by the next daily run."),
        ]
        if spec.dimensions:
            specs.append(check(DIMENSIONS_PARSE, "Financial dimension strings split into their dimensions "
                               f"(at most {MAX_UNPARSED_SHARE:.0%} unparseable)."))
    return specs


def entity_check_results(
    context: dg.AssetExecutionContext, fo: FoRuntime, spec: EntitySpec, batch: LandedBatch,
    key: dg.AssetKey,
) -> Iterator[dg.AssetCheckEvaluation]:
    """The selected checks of ``spec``, after its batch was loaded, recorded for every day of the run.

    Dagster 1.13 records an ``AssetCheckResult`` of a run over a partition range (a single-run backfill)
    without a partition, so each day's planned check would show as skipped in the UI. Each day's
    evaluation also names the materialization of that day it checked: without it the UI does not count
    the day as checked.
    """
    targets = _materializations_by_partition(context, key)
    for result in _results(context, fo, spec, batch, key):
        blocking = context.assets_def.get_spec_for_check_key(dg.AssetCheckKey(key, result.check_name)).blocking
        for partition in context.partition_keys:
            yield dg.AssetCheckEvaluation(
                asset_key=key, check_name=result.check_name, passed=result.passed, metadata=result.metadata,
                target_materialization_data=targets.get(partition), severity=result.severity,
                description=result.description, blocking=blocking, partition=partition,
            )


def _materializations_by_partition(
    context: dg.AssetExecutionContext, key: dg.AssetKey
) -> dict[str, TargetMaterialization]:
    """The run's materialization of each of its days: the newest one of each day, as the output was just stored."""
    days = context.partition_keys
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=days), limit=len(days)
    ).records
    targets: dict[str, TargetMaterialization] = {}
    for record in records:  # newest first
        if record.partition_key is not None:
            targets.setdefault(record.partition_key, TargetMaterialization(
                run_id=record.run_id, storage_id=record.storage_id, timestamp=record.timestamp))
    return targets


def _results(
    context: dg.AssetExecutionContext, fo: FoRuntime, spec: EntitySpec, batch: LandedBatch,
    key: dg.AssetKey,
) -> Iterator[dg.AssetCheckResult]:
    selected = {check.name for check in context.selected_asset_check_keys if check.asset_key == key}
    if KEYS_UNIQUE in selected:
        profile = fo.sink.profile(spec)
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=KEYS_UNIQUE,
            passed=profile.duplicate_keys == 0 and profile.null_keys == 0,
            metadata={"live_rows": profile.live_rows, "duplicate_keys": profile.duplicate_keys,
                      "null_keys": profile.null_keys},
        )
    if ROWS_MATCH_SOURCE in selected:
        yield _rows_match_source(key, batch)
    if SCHEMA_DRIFT in selected:
        removed = batch.manifest.removed_fields
        yield dg.AssetCheckResult(
            asset_key=key, check_name=SCHEMA_DRIFT, passed=not removed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"removed_fields": ", ".join(removed) or "none"},
        )
    if WINDOW_CLOSED in selected:
        yield _window_closed(key, batch)
    if DIMENSIONS_PARSE in selected and spec.dimensions:
        yield _dimensions_parse(key, spec, batch)


def _rows_match_source(key: dg.AssetKey, batch: LandedBatch) -> dg.AssetCheckResult:
    """Every read of the batch was complete: one page, or as many distinct keys as F&O's own $count."""
    reads = batch.manifest.reads
    summary = {
        company or "shared": {"queries": r["queries"], "distinct_keys_read": r["distinct"],
                              "queries_counted_by_fo": r["counted_queries"]}
        for company, r in reads.items()
    }
    incomplete = {company or "shared": r["incomplete"] for company, r in reads.items() if not r.get("complete", True)}
    return dg.AssetCheckResult(
        asset_key=key, check_name=ROWS_MATCH_SOURCE, passed=not incomplete,
        metadata={"reads": dg.MetadataValue.json(summary), "incomplete": dg.MetadataValue.json(incomplete)},
        description=f"incomplete reads in {', '.join(incomplete)}: no deletes were flagged there" if incomplete else None,
    )


def _window_closed(key: dg.AssetKey, batch: LandedBatch) -> dg.AssetCheckResult:
    window = batch.manifest.window
    read_at = dt.datetime.fromisoformat(batch.manifest.created_at)
    closed = window is None or read_at >= dt.datetime.fromisoformat(window[1]).replace(tzinfo=dt.timezone.utc)
    return dg.AssetCheckResult(
        asset_key=key, check_name=WINDOW_CLOSED, passed=closed, severity=dg.AssetCheckSeverity.WARN,
        metadata={"read_at": read_at.isoformat(), "window_end": window[1] if window else "full history"},
    )


def _dimensions_parse(key: dg.AssetKey, spec: EntitySpec, batch: LandedBatch) -> dg.AssetCheckResult:
    # The extractor splits dimension strings while landing and counts the ones that do not fit the format.
    values = batch.manifest.row_count * len(spec.dimensions)
    unparsed = int(batch.manifest.stats.get("unparseable_dimensions", 0))
    share = unparsed / values if values else 0.0
    return dg.AssetCheckResult(
        asset_key=key, check_name=DIMENSIONS_PARSE, passed=share <= MAX_UNPARSED_SHARE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"values": values, "unparseable": unparsed, "share": round(share, 6)},
    )
