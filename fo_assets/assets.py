"""The entity assets: one asset per catalog entity, all extracted by one multi-asset.

One multi-asset (``can_subset=True``) rather than one asset each, so a run's F&O requests happen in one
process under one throttle budget: entities and companies extract concurrently without exceeding what
the environment allows. A partition range is one run (``BackfillPolicy.single_run()``): a year of
backfill is one scan per company, not 365 runs.
"""


import datetime as dt
from typing import Iterator, Sequence

import dagster as dg

from fo_assets import checks
from fo_assets.catalog import Catalog, EntitySpec
from fo_assets.dynamics.extract import ExtractError, ExtractRequest
from fo_assets.io_manager import ENTITY_SET_KEY
from fo_assets.keys import entity_key
from fo_assets.partitions import run_window
from fo_assets.resources import FoRuntime

KINDS = {"dynamics365", "databricks", "delta"}
OWNERS = ["team:finance-data"]
# Entity tables are loaded daily; an analyst should hear about a table that has not been for a day and a half.
FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=36), warn_window=dt.timedelta(hours=26))


def entity_out(catalog: Catalog, spec: EntitySpec, prefix: Sequence[str]) -> dg.AssetOut:
    return dg.AssetOut(
        key=entity_key(spec, prefix),
        description=spec.description,
        group_name=spec.group,
        io_manager_key="fo_io_manager",
        is_required=False,
        kinds=KINDS,
        owners=OWNERS,
        freshness_policy=FRESHNESS,
        metadata={
            ENTITY_SET_KEY: spec.entity_set,
            "fo/key_columns": ", ".join(spec.key_columns),
            "fo/read_by": spec.window_field or ("header" if catalog.mode_of(spec) == "lines" else "snapshot"),
            "dagster/table_name": spec.table,
        },
    )


def build_entity_assets(
    catalog: Catalog, partitions_def: dg.PartitionsDefinition, pool: str, prefix: Sequence[str] = ()
) -> dg.AssetsDefinition:
    by_key = {entity_key(spec, prefix): spec for spec in catalog}

    @dg.multi_asset(
        name="fo_entities",
        outs={spec.table: entity_out(catalog, spec, prefix) for spec in catalog},
        internal_asset_deps={
            spec.table: {entity_key(catalog.spec_for(spec.parent.entity_set), prefix)} if spec.parent else set()
            for spec in catalog
        },
        can_subset=True,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=pool,
        check_specs=checks.entity_check_specs(catalog, partitions_def, prefix),
    )
    def fo_entities(context: dg.AssetExecutionContext, fo: FoRuntime) -> Iterator[dg.Output | dg.AssetCheckEvaluation]:
        """Reads the selected F&O entities for the run's days and lands each as an upserted table."""
        window = run_window(context)
        specs = [by_key[key] for key in by_key if key in context.selected_asset_keys]
        requests = [
            ExtractRequest(spec, window=window if catalog.mode_of(spec) != "snapshot" else None) for spec in specs
        ]
        context.log.info(
            f"reading {', '.join(s.entity_set for s in specs)} for "
            f"{'full history' if window is None else f'[{window[0]}, {window[1]})'}"
        )
        with fo.extractor(context.run.run_id, context.log) as extractor:
            try:
                batches, failure = extractor.extract(requests), None
            except ExtractError as exc:
                # Land what was read completely; the incomplete reads fail the run after that.
                batches, failure = exc.batches, exc
            for spec, batch in zip(specs, batches):
                if batch.manifest.status != "landed":
                    continue
                yield dg.Output(batch, output_name=spec.table)
                yield from checks.entity_check_results(context, fo, spec, batch, entity_key(spec, prefix))
        if failure is not None:
            raise failure

    return fo_entities
