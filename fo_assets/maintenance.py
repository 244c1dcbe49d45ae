"""Table maintenance: compaction and vacuum of every entity table, and the landing zone's retention.

The job runs in the pool of the F&O environment, like the entity loads: OPTIMIZE and a MERGE into the
same table are concurrent writes, and Delta fails one of them unless the table has deletion vectors
(docs/databricks.md, "Concurrent writes"). The tables have them and the sink retries conflicts too;
sharing the pool keeps the weekly compaction out of the loads' way in the first place.
"""

import datetime as dt

import dagster as dg

from fo_assets.resources import FoRuntime


def maintain_tables(context: dg.OpExecutionContext, fo: FoRuntime) -> None:
    """OPTIMIZE and VACUUM each entity table (within the time-travel retention the audit trail needs),
    then delete loaded batches past FO_LANDING_RETENTION_DAYS (failed and unloaded ones are kept)."""
    for spec in fo.settings.catalog:
        try:
            outcome = fo.sink.maintain(spec)
        except Exception as exc:  # a table not loaded yet has nothing to maintain; report, go on
            context.log.warning(f"{spec.table}: not maintained: {exc}")
            continue
        context.log.info(f"{spec.table}: {outcome}")
    retention = dt.timedelta(days=fo.settings.landing_retention_days)
    removed = fo.ledger.purge(retention)
    context.log.info(f"landing zone: {len(removed)} loaded batch(es) older than {retention.days} days removed")


def build_maintenance(pool: str) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    """The maintenance job, in ``pool`` (the entity loads' pool), and its weekly schedule."""
    op = dg.op(name="maintain_tables", pool=pool, tags={"kind": "delta"})(maintain_tables)

    @dg.job(name="fo_table_maintenance", description="Compacts and vacuums the entity tables; prunes old batches.")
    def table_maintenance() -> None:
        op()

    schedule = dg.ScheduleDefinition(
        name="fo_weekly_maintenance",
        job=table_maintenance,
        cron_schedule="0 5 * * 6",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Saturday 05:00 UTC: table compaction and vacuum, landing zone retention.",
    )
    return table_maintenance, schedule
