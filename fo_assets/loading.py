"""The one load path: a landed batch into its table, recorded in the ledger, described for Dagster.

Runs (through the IO manager), event refreshes, the weekly reconciliation and replays all load here.
"""

from typing import Any

import dagster as dg

from fo_assets.catalog import EntitySpec
from fo_assets.landing import LandedBatch, Ledger
from fo_assets.sinks.base import LoadResult, Sink, check_loadable


def upsert_batch(sink: Sink, ledger: Ledger, batch: LandedBatch, spec: EntitySpec) -> LoadResult:
    """Load one landed batch and record the outcome in the ledger."""
    # Refused before the try: a batch that must never load (still extracting, an incomplete read, keyed
    # differently, its files neither here nor archived intact) is not a failed load, so it must not become
    # replayable.
    ledger.fetch(batch)
    check_loadable(batch, spec)
    try:
        result = sink.upsert(batch, spec)
    except Exception as exc:
        ledger.mark_failed(batch, f"{type(exc).__name__}: {exc}")
        raise
    ledger.mark_loaded(batch, {"inserted": result.inserted, "updated": result.updated, "deleted": result.deleted})
    return result


def load_metadata(batch: LandedBatch, result: LoadResult) -> dict[str, Any]:
    """What one load did, kept small: Dagster copies it onto every day a run covers (each day's own row
    count and the columns are added by the asset, see assets.py)."""
    manifest = batch.manifest
    stats = manifest.stats
    metadata: dict[str, Any] = {
        "dagster/table_name": result.table_name,
        "dagster/uri": dg.MetadataValue.url(result.uri) if "://" in result.uri else result.uri,
        "dagster/row_count": result.rows,
        "fo/batch_id": manifest.batch_id,
        "fo/mode": manifest.mode,
        "fo/rows_read": manifest.row_count,
        "fo/inserted": result.inserted,
        "fo/updated": result.updated,
        "fo/deleted": result.deleted,
        "fo/requests": int(stats.get("requests", 0)),
        "fo/throttled_429": int(stats.get("throttled", 0)),
        "fo/extract_seconds": float(stats.get("seconds", 0.0)),
    }
    if manifest.window:
        metadata["fo/window"] = f"[{manifest.window[0]}, {manifest.window[1]})"
    if manifest.removed_fields:
        metadata["fo/removed_fields"] = ", ".join(manifest.removed_fields)
    return metadata
