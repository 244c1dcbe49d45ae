"""The entity assets: one asset per catalog entity, extracted by two multi-assets.

``fo_entities`` holds the entities read by day (windowed entities and their lines): daily partitions, a
partition range run as one run per chunk of days (``BackfillPolicy.multi_run``), so a year of backfill is
a dozen scans per company, not 365, and a failure costs a chunk. ``fo_snapshots`` holds the entities
read whole every day (master data, pending invoices): unpartitioned, because that is what they are.
Both run in one process per run (the code location's executor is in-process): every F&O request of a
run draws from one throttle budget, and within a multi-asset entities and companies read concurrently.
"""


from collections.abc import Iterator, Sequence

import dagster as dg

from fo_assets import checks
from fo_assets.alerts import ENTITY_FRESHNESS
from fo_assets.catalog import Catalog, EntitySpec
from fo_assets.dynamics.extract import ExtractError, ExtractRequest
from fo_assets.io_manager import ENTITY_SET_KEY
from fo_assets.keys import entity_key
from fo_assets.landing import AUDIT_FIELDS, LandedBatch
from fo_assets.partitions import run_window
from fo_assets.resources import FoRuntime

KINDS = {"dynamics365", "databricks", "delta"}
OWNERS = ["team:finance-data"]


def entity_out(catalog: Catalog, spec: EntitySpec, prefix: Sequence[str]) -> dg.AssetOut:
    """The Dagster output of one entity in the multi-asset: its key, group, description and kinds."""
    return dg.AssetOut(
        key=entity_key(spec, prefix),
        description=spec.description,
        group_name=spec.group,
        io_manager_key="fo_io_manager",
        is_required=False,
        kinds=KINDS,
        owners=OWNERS,
        freshness_policy=ENTITY_FRESHNESS,
        metadata={
            ENTITY_SET_KEY: spec.entity_set,
            "fo/key_columns": ", ".join(spec.key_columns),
            "fo/read_by": spec.window_field or ("header" if catalog.mode_of(spec) == "lines" else "snapshot"),
            **({"fo/derived_columns": ", ".join(spec.derived_columns)} if spec.derived_columns else {}),
        },
    )


def build_entity_assets(
    catalog: Catalog, partitions_def: dg.PartitionsDefinition, pool: str, prefix: Sequence[str] = (),
    chunk_days: int = 31,
) -> list[dg.AssetsDefinition]:
    """The entity multi-assets: entities read by day (partitioned) and entities read whole."""
    by_day = [spec for spec in catalog if catalog.mode_of(spec) != "snapshot"]
    whole = [spec for spec in catalog if catalog.mode_of(spec) == "snapshot"]
    # 0: a range is one run, which is also what `dagster asset materialize --partition-range` requires.
    policy = (dg.BackfillPolicy.multi_run(max_partitions_per_run=chunk_days) if chunk_days
              else dg.BackfillPolicy.single_run())
    return [
        _entity_assets("fo_entities", catalog, by_day, pool, prefix, partitions_def, policy),
        _entity_assets("fo_snapshots", catalog, whole, pool, prefix, None, None),
    ]


def _entity_assets(
    name: str, catalog: Catalog, specs: list[EntitySpec], pool: str, prefix: Sequence[str],
    partitions_def: dg.PartitionsDefinition | None, backfill_policy: dg.BackfillPolicy | None,
) -> dg.AssetsDefinition:
    by_key = {entity_key(spec, prefix): spec for spec in specs}

    @dg.multi_asset(
        name=name,
        outs={spec.table: entity_out(catalog, spec, prefix) for spec in specs},
        internal_asset_deps={
            spec.table: {entity_key(catalog.spec_for(spec.parent.entity_set), prefix)} if spec.parent else set()
            for spec in specs
        },
        can_subset=True,
        partitions_def=partitions_def,
        backfill_policy=backfill_policy,
        pool=pool,
        check_specs=checks.check_specs(specs, partitions_def, prefix),
    )
    def entities(context: dg.AssetExecutionContext, fo: FoRuntime) -> Iterator[dg.Output | dg.AssetCheckResult | dg.AssetCheckEvaluation]:
        """Reads the selected F&O entities and lands each as an upserted table."""
        window = run_window(context) if partitions_def else None
        selected = [by_key[key] for key in by_key if key in context.selected_asset_keys]
        requests = [ExtractRequest(spec, window=window) for spec in selected]
        context.log.info(
            f"reading {', '.join(s.entity_set for s in selected)} for "
            f"{'the whole entity' if window is None else f'[{window[0]}, {window[1]})'}"
        )
        batches, failures = [], []
        with fo.extractor(context.run.run_id, context.log) as extractor:
            # Each entity is loaded as soon as it is read, while the others are still in flight (the GL
            # vouchers' MERGE and events overlap their lines' reads); a failed one fails the run after
            # every entity read completely has landed.
            for landing in extractor.landing(requests):
                spec, batch = landing.request.spec, landing.batch
                batches.append(batch)
                if landing.error is not None:
                    failures.append(landing.error)
                if batch.manifest.status != "landed":
                    context.log.error(f"{spec.entity_set} was not landed: {batch.manifest.error}")
                    continue
                key = entity_key(spec, prefix)
                _describe_days(context, key, batch)
                yield dg.Output(batch, output_name=spec.table)
                yield from checks.check_results(context, fo, spec, batch, key)
        if failures:
            raise ExtractError(failures, batches)

    return entities


def _describe_days(context: dg.AssetExecutionContext, key: dg.AssetKey, batch: LandedBatch) -> None:
    """Each day's own row count; the columns once per run (on the last day), not on every day."""
    schema = dg.TableSchema(columns=[
        *(dg.TableColumn(c["name"], c["type"]) for c in batch.manifest.schema),
        *(dg.TableColumn(f.name, str(f.type)) for f in AUDIT_FIELDS),
    ])
    if not context.assets_def.partitions_def:
        context.add_asset_metadata({"dagster/column_schema": schema}, asset_key=key)
        return
    days = list(context.partition_keys)
    for day in days:
        context.add_asset_metadata({"dagster/partition_row_count": batch.manifest.rows_by_day.get(day, 0)},
                                   asset_key=key, partition_key=day)
    context.add_asset_metadata({"dagster/column_schema": schema}, asset_key=key, partition_key=days[-1])
