"""The project's code location plus one job: the GL entities (vouchers and their lines) for a range of days.

What a user gets from a backfill of those two assets launched in the UI: one run of the entity assets'
step, with the project's executor, resources and IO manager, for the days of the range. The benchmark
runs it with ``dagster job execute -m bench.gl_location -j fo_gl_backfill`` and the range as run tags,
because the CLI's ``asset materialize --partition-range`` accepts only assets with a single-run backfill
policy, and the entity assets backfill in chunks of runs.
"""

import dagster as dg

from fo_assets.catalog import STANDARD
from fo_assets.definitions import build_definitions
from fo_assets.keys import entity_key
from fo_assets.partitions import daily_partitions
from fo_assets.settings import load_definition_settings

GL_JOB = "fo_gl_backfill"
GL_ENTITIES = ("GeneralJournalEntryBiEntities", "GeneralJournalAccountEntryBiEntities")


@dg.definitions
def defs() -> dg.Definitions:
    settings = load_definition_settings()
    job = dg.define_asset_job(
        GL_JOB,
        selection=dg.AssetSelection.assets(*(entity_key(STANDARD.spec_for(n), settings.asset_key_prefix)
                                             for n in GL_ENTITIES)),
        partitions_def=daily_partitions(settings.partitions_start),
    )
    return dg.Definitions.merge(build_definitions(), dg.Definitions(jobs=[job]))
