"""The Definitions object of the fo_assets code location: assembles the parts, nothing else."""

import dagster as dg

from fo_assets.assets import build_entity_assets
from fo_assets.io_manager import UpsertIOManager
from fo_assets.maintenance import build_maintenance
from fo_assets.model import build_model_assets
from fo_assets.partitions import daily_partitions
from fo_assets.refresh import build_refresh_job
from fo_assets.resources import FoRuntime
from fo_assets.schedules import build_schedules
from fo_assets.sensors import build_events_sensor, build_failure_sensor
from fo_assets.settings import load_settings

ENTITY_JOB = "fo_entities_job"


def build_definitions(config_file: str | None = None) -> dg.Definitions:
    """Everything of one code location; ``config_file`` is its own settings file (one per customer)."""
    settings = load_settings(config_file=config_file)
    partitions = daily_partitions(settings.partitions_start)
    prefix = settings.asset_key_prefix
    entities = build_entity_assets(partitions, settings.pool, prefix)
    entity_job = dg.define_asset_job(
        ENTITY_JOB,
        selection=dg.AssetSelection.assets(entities),
        partitions_def=partitions,
        description="Reads every F&O entity for the selected days and upserts it into its table.",
    )
    refresh_job = build_refresh_job(partitions, settings.pool, prefix)
    maintenance_job, maintenance_schedule = build_maintenance(settings.pool)
    runtime = FoRuntime(config_file=config_file)
    return dg.Definitions(
        assets=[entities, build_model_assets(prefix)],
        jobs=[entity_job, refresh_job, maintenance_job],
        schedules=[*build_schedules(entity_job, config_file), maintenance_schedule],
        sensors=[build_events_sensor(refresh_job, config_file), build_failure_sensor(config_file),
                 dg.AutomationConditionSensorDefinition("fo_model_automation", target=dg.AssetSelection.groups("model"),
                                                        default_status=dg.DefaultSensorStatus.RUNNING)],
        resources={"fo": runtime, "fo_io_manager": UpsertIOManager(runtime=runtime)},
    )


@dg.definitions
def defs() -> dg.Definitions:
    # Built when the code location loads, not at import: the partition start and the pool name (one per
    # F&O environment) come from the environment then. Secrets are resolved later, when a run starts.
    return build_definitions()
