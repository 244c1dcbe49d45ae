"""The Definitions object of the fo_assets code location: assembles the parts, nothing else."""

import warnings

import dagster as dg

from fo_assets.alerts import build_failure_sensor, build_freshness_sensor, watch_list
from fo_assets.assets import build_entity_assets
from fo_assets.io_manager import UpsertIOManager
from fo_assets.maintenance import build_maintenance
from fo_assets.model import build_model_assets
from fo_assets.partitions import daily_partitions
from fo_assets.reconciliation import RECONCILIATION_JOB, build_reconciliation_job
from fo_assets.refresh import build_refresh_job
from fo_assets.resources import FoRuntime
from fo_assets.schedules import build_schedules
from fo_assets.sensors import build_events_sensor
from fo_assets.settings import load_definition_settings

ENTITY_JOB = "fo_entities_job"


def build_definitions(config_file: str | None = None) -> dg.Definitions:
    """Everything of one code location; ``config_file`` is its own settings file (one per customer).

    Only the settings that shape the definitions are read here (asset keys, partitions, pool): a wrong
    runtime setting fails the runs, schedules and sensors that need it, with its message, and never takes
    the code location down."""
    settings = load_definition_settings(config_file=config_file)
    catalog, prefix, pool = settings.catalog, settings.asset_key_prefix, settings.pool
    partitions = daily_partitions(settings.partitions_start)
    entities = build_entity_assets(catalog, partitions, pool, prefix, settings.backfill_chunk_days)
    model = build_model_assets(catalog, prefix)
    entity_job = dg.define_asset_job(
        ENTITY_JOB,
        selection=dg.AssetSelection.assets(*entities),
        partitions_def=partitions,
        description="Reads every F&O entity for the selected days (and every entity read whole) and upserts it.",
    )
    # Event refreshes are small: they get a pool of their own so they never wait for a long backfill.
    refresh_job = build_refresh_job(partitions, f"{pool}_events", prefix)
    maintenance_job, maintenance_schedule = build_maintenance(pool)
    runtime = FoRuntime(config_file=config_file)
    with warnings.catch_warnings():
        # Code references and partitioned checks are beta/preview in Dagster 1.13, used knowingly (README,
        # "Dagster APIs in use"): their warnings would fill every process's log at load.
        warnings.simplefilter("ignore", dg.BetaWarning)
        assets = dg.with_source_code_references([*entities, model])
    return dg.Definitions(
        assets=assets,
        jobs=[entity_job, refresh_job, build_reconciliation_job(catalog, pool, prefix), maintenance_job],
        schedules=[*build_schedules(ENTITY_JOB, RECONCILIATION_JOB, config_file), maintenance_schedule],
        sensors=[build_events_sensor(refresh_job, config_file), build_failure_sensor(config_file),
                 build_freshness_sensor(watch_list([*entities, model]), config_file),
                 dg.AutomationConditionSensorDefinition("fo_model_automation", target=dg.AssetSelection.groups("model"),
                                                        default_status=dg.DefaultSensorStatus.RUNNING)],
        resources={"fo": runtime, "fo_io_manager": UpsertIOManager(runtime=runtime)},
        # Every job here is one step (all of a run's F&O requests share one process and one throttle
        # budget): a step subprocess would only add a second Python and a second Dagster import per run.
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location's definitions, built when Dagster loads it."""
    # Built when the code location loads, not at import: the partitions, asset keys and pool come from
    # the environment then. Secrets and every other setting are read later, when a run starts.
    return build_definitions()
