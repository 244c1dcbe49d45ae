"""Data checks on every entity asset, evaluated in the run that lands the data.

Two kinds, so each result is about what it checked:

- table checks (unpartitioned): ``keys_unique`` (blocking: a table with duplicate or null keys must not be
  modeled; it checks the whole table, whatever the run read), ``schema_drift`` and ``dimensions_parse``
  (about the tenant and the dimension format, not a day);
- day checks (partitioned like the windowed assets, so the UI shows each day's result beside the day's
  data): ``rows_match_source`` (the reads that covered this day were complete) and ``window_closed`` (this
  day was read after it ended). An entity read whole has them unpartitioned.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import dagster as dg

# Not exported by Dagster 1.13 (pinned exactly), but the only way to tie a day's check to the day's data;
# fo_assets_tests/test_dagster_private_api.py fails loudly if an upgrade moves it.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData as TargetMaterialization,
)

from fo_assets.catalog import EntitySpec
from fo_assets.keys import entity_key
from fo_assets.landing import LandedBatch

if TYPE_CHECKING:
    from fo_assets.resources import FoRuntime

KEYS_UNIQUE = "keys_unique"
ROWS_MATCH_SOURCE = "rows_match_source"
SCHEMA_DRIFT = "schema_drift"
DIMENSIONS_PARSE = "dimensions_parse"
WINDOW_CLOSED = "window_closed"
DAY_CHECKS = (ROWS_MATCH_SOURCE, WINDOW_CLOSED)
# What a failure of each check means: ERROR for data that is wrong or incomplete, WARN for what a person
# should look at (a day read before it ended, fields the tenant dropped, a dimension format that drifted).
SEVERITIES = {
    KEYS_UNIQUE: dg.AssetCheckSeverity.ERROR,
    ROWS_MATCH_SOURCE: dg.AssetCheckSeverity.ERROR,
    SCHEMA_DRIFT: dg.AssetCheckSeverity.WARN,
    DIMENSIONS_PARSE: dg.AssetCheckSeverity.WARN,
    WINDOW_CLOSED: dg.AssetCheckSeverity.WARN,
}
# Above this share of unparseable dimension strings the dimension format setting is probably wrong.
MAX_UNPARSED_SHARE = 0.01


def check_specs(
    specs: Sequence[EntitySpec], partitions_def: dg.PartitionsDefinition | None, prefix: Sequence[str] = ()
) -> list[dg.AssetCheckSpec]:
    """The checks of the entity assets ``specs``; day checks take ``partitions_def``."""
    with warnings.catch_warnings():
        # Partitioned checks are a preview API in Dagster 1.13, used knowingly (README, "Dagster APIs in use").
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [check for spec in specs for check in _check_specs(spec, partitions_def, prefix)]


def _check_specs(
    spec: EntitySpec, partitions_def: dg.PartitionsDefinition | None, prefix: Sequence[str]
) -> list[dg.AssetCheckSpec]:
    key = entity_key(spec, prefix)
    found = [
        dg.AssetCheckSpec(KEYS_UNIQUE, asset=key, blocking=True, description=(
            f"Every live row of {spec.table} has a unique, non-null key ({', '.join(spec.key_columns)}).")),
        dg.AssetCheckSpec(SCHEMA_DRIFT, asset=key, description=(
            "No field the table had was removed in the tenant (new fields become columns automatically).")),
        dg.AssetCheckSpec(ROWS_MATCH_SOURCE, asset=key, partitions_def=partitions_def, description=(
            "Every read of several pages covering this day returned as many distinct keys as F&O's own "
            "$count of the same query: no row was skipped or repeated while paging (deletes are only "
            "flagged where this holds).")),
        dg.AssetCheckSpec(WINDOW_CLOSED, asset=key, partitions_def=partitions_def, description=(
            "The day was read after it ended; a day read while still open is provisional and is re-read "
            "by the next daily run.")),
    ]
    if spec.dimensions:
        found.append(dg.AssetCheckSpec(DIMENSIONS_PARSE, asset=key, description=(
            f"Financial dimension strings split into their dimensions (at most {MAX_UNPARSED_SHARE:.0%} "
            "unparseable).")))
    return found


def check_results(
    context: dg.AssetExecutionContext, fo: FoRuntime, spec: EntitySpec, batch: LandedBatch, key: dg.AssetKey,
) -> Iterator[dg.AssetCheckResult | dg.AssetCheckEvaluation]:
    """The selected checks of ``spec``, after its batch was loaded: table checks once, day checks per day."""
    selected = {check.name for check in context.selected_asset_check_keys if check.asset_key == key}
    if KEYS_UNIQUE in selected:
        yield keys_unique(fo, spec, key)
    if SCHEMA_DRIFT in selected:
        removed = batch.manifest.removed_fields
        yield dg.AssetCheckResult(
            asset_key=key, check_name=SCHEMA_DRIFT, passed=not removed, severity=SEVERITIES[SCHEMA_DRIFT],
            metadata={"removed_fields": ", ".join(removed) or "none"},
        )
    if DIMENSIONS_PARSE in selected and spec.dimensions:
        yield _dimensions_parse(key, spec, batch)
    days: list[str | None] = list(context.partition_keys) if context.assets_def.partitions_def else [None]
    targets = _materializations_by_partition(context, key) if days != [None] else {}
    for day in days:
        for name in DAY_CHECKS:
            if name in selected:
                result = (_rows_match_source if name == ROWS_MATCH_SOURCE else _window_closed)(batch, day)
                yield _on_day(context, key, name, result, day, targets.get(day or ""))


def keys_unique(fo: FoRuntime, spec: EntitySpec, key: dg.AssetKey) -> dg.AssetCheckResult:
    """The blocking table check, over the whole table where it lives (also run after event refreshes)."""
    profile = fo.sink.profile(spec)
    return dg.AssetCheckResult(
        asset_key=key, check_name=KEYS_UNIQUE, passed=profile.duplicate_keys == 0 and profile.null_keys == 0,
        metadata={"live_rows": profile.live_rows, "duplicate_keys": profile.duplicate_keys,
                  "null_keys": profile.null_keys},
    )


def _on_day(context: dg.AssetExecutionContext, key: dg.AssetKey, name: str, result: tuple[bool, dict, str | None],
            day: str | None, target: TargetMaterialization | None) -> dg.AssetCheckResult | dg.AssetCheckEvaluation:
    """Dagster 1.13 records an ``AssetCheckResult`` of a run over a partition range without a partition, so
    each day's result is an evaluation of its own, naming the materialization of that day it checked
    (without it the UI does not count the day as checked)."""
    passed, metadata, description = result
    severity = SEVERITIES[name]
    if day is None:
        return dg.AssetCheckResult(asset_key=key, check_name=name, passed=passed, metadata=metadata,
                                   description=description, severity=severity)
    return dg.AssetCheckEvaluation(
        asset_key=key, check_name=name, passed=passed, metadata=metadata, description=description,
        severity=severity, blocking=False, partition=day, target_materialization_data=target,
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


def _rows_match_source(batch: LandedBatch, day: str | None) -> tuple[bool, dict, str | None]:
    """The reads that covered ``day`` (None: the whole batch) were complete."""
    failed: dict[str, list] = {}
    for company, reads in batch.manifest.reads.items():
        incomplete = [r for r in reads["incomplete"] if _covers(r.get("days"), day)]
        # More incomplete reads than the manifest lists: their days are unknown, so every day fails.
        if incomplete or reads.get("incomplete_queries", 0) > len(reads["incomplete"]):
            failed[company or "shared"] = incomplete
    summary = {
        company or "shared": {"queries": r["queries"], "distinct_keys_read": r["distinct"],
                              "queries_counted_by_fo": r["counted_queries"]}
        for company, r in batch.manifest.reads.items()
    }
    description = f"incomplete reads in {', '.join(failed)}: no deletes were flagged there" if failed else None
    return not failed, {"reads": dg.MetadataValue.json(summary), "incomplete": dg.MetadataValue.json(failed)}, description


def _covers(days: list[str] | None, day: str | None) -> bool:
    return days is None or day is None or days[0] <= day < days[1]


def _window_closed(batch: LandedBatch, day: str | None) -> tuple[bool, dict, str | None]:
    read_at = dt.datetime.fromisoformat(batch.manifest.created_at)
    window = batch.manifest.window
    end = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat() if day else (window[1] if window else None)
    closed = end is None or read_at >= dt.datetime.fromisoformat(end).replace(tzinfo=dt.UTC)
    description = None if closed else f"read at {read_at:%Y-%m-%d %H:%M} UTC, before the day ended"
    return closed, {"read_at": read_at.isoformat(), "day_ends": end or "full history"}, description


def _dimensions_parse(key: dg.AssetKey, spec: EntitySpec, batch: LandedBatch) -> dg.AssetCheckResult:
    # The extractor splits dimension strings while landing and counts the ones that do not fit the format.
    values = batch.manifest.row_count * len(spec.dimensions)
    unparsed = int(batch.manifest.stats.get("unparseable_dimensions", 0))
    share = unparsed / values if values else 0.0
    return dg.AssetCheckResult(
        asset_key=key, check_name=DIMENSIONS_PARSE, passed=share <= MAX_UNPARSED_SHARE,
        severity=SEVERITIES[DIMENSIONS_PARSE],
        metadata={"values": values, "unparseable": unparsed, "share": round(share, 6)},
    )
