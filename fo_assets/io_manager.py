"""The upsert IO manager: an entity asset returns a landed batch, this loads it into the entity's table."""


from typing import Any

import dagster as dg
import pyarrow as pa

from fo_assets.catalog import EntitySpec
from fo_assets.landing import LandedBatch, Ledger
from fo_assets.resources import FoRuntime
from fo_assets.sinks.base import LoadResult, Sink, check_loadable

ENTITY_SET_KEY = "fo/entity_set"


def upsert_batch(sink: Sink, ledger: Ledger, batch: LandedBatch, spec: EntitySpec) -> LoadResult:
    """Load one landed batch and record the outcome in the ledger (the one path for runs and replays)."""
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


def load_metadata(spec: EntitySpec, batch: LandedBatch, result: LoadResult, partitioned: bool) -> dict[str, Any]:
    manifest = batch.manifest
    schema = dg.TableSchema(columns=[dg.TableColumn(name, type_) for name, type_ in result.columns])
    stats = manifest.stats
    metadata: dict[str, Any] = {
        "dagster/table_name": result.table_name,
        "dagster/uri": dg.MetadataValue.url(result.uri) if "://" in result.uri else result.uri,
        "dagster/column_schema": schema,
        "fo/batch_id": manifest.batch_id,
        "fo/mode": manifest.mode,
        "fo/rows_read": manifest.row_count,
        "fo/rows_by_company": dg.MetadataValue.json(manifest.rows_by_company),
        "fo/inserted": result.inserted,
        "fo/updated": result.updated,
        "fo/deleted": result.deleted,
        "fo/pages": int(stats.get("pages", 0)),
        "fo/requests": int(stats.get("requests", 0)),
        "fo/throttled_429": int(stats.get("throttled", 0)),
        "fo/bytes": int(stats.get("bytes", 0)),
        "fo/extract_seconds": float(stats.get("seconds", 0.0)),
    }
    if manifest.window:
        metadata["fo/window"] = f"[{manifest.window[0]}, {manifest.window[1]})"
    if manifest.removed_fields:
        metadata["fo/removed_fields"] = ", ".join(manifest.removed_fields)
    metadata["dagster/partition_row_count" if partitioned else "dagster/row_count"] = manifest.row_count
    return metadata


class UpsertIOManager(dg.ConfigurableIOManager):
    """Upserts each landed batch by the entity's key into its table (Databricks or local Delta)."""

    runtime: FoRuntime

    def handle_output(self, context: dg.OutputContext, obj: LandedBatch) -> None:
        spec = self.runtime.settings.catalog.spec_for(context.definition_metadata[ENTITY_SET_KEY])
        result = upsert_batch(self.runtime.sink, self.runtime.ledger, obj, spec)
        context.add_output_metadata(load_metadata(spec, obj, result, context.has_asset_partitions))

    def load_input(self, context: dg.InputContext) -> pa.Table:
        """Downstream Python assets get the entity's current rows as an Arrow table."""
        upstream = context.upstream_output
        assert upstream is not None
        catalog = self.runtime.settings.catalog
        return self.runtime.sink.read(catalog.spec_for(upstream.definition_metadata[ENTITY_SET_KEY]))
