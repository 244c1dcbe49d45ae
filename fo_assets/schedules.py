"""Schedules: a daily trailing window catches what events missed; a weekly reconciliation catches the rest."""


import datetime as dt

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from fo_assets.partitions import FULL_HISTORY_TAG, range_tags
from fo_assets.settings import load_settings


def trailing_window(today: dt.date, days: int, first: dt.date) -> tuple[dt.date, dt.date]:
    """The last ``days`` partitions up to and including today (never before the first partition)."""
    return max(first, today - dt.timedelta(days=days - 1)), today


def build_schedules(job: UnresolvedAssetJobDefinition, config_file: str | None = None) -> list[dg.ScheduleDefinition]:
    @dg.schedule(
        name="fo_daily_trailing_window",
        job=job,
        cron_schedule="0 3 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Re-reads the trailing window of every windowed entity (late and back-dated postings, "
        "anything an event missed) and every snapshot entity, as one run.",
    )
    def daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        settings = load_settings(config_file=config_file)
        today = context.scheduled_execution_time.date()
        first, last = trailing_window(today, settings.trailing_days, settings.partitions_start)
        return dg.RunRequest(run_key=f"daily-{today}", tags=range_tags(first, last))

    @dg.schedule(
        name="fo_weekly_reconciliation",
        job=job,
        cron_schedule="0 4 * * 0",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Re-reads the full history of every entity per company: status changes and deletes on "
        "old records are invisible to a trailing date window.",
    )
    def weekly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        settings = load_settings(config_file=config_file)
        today = context.scheduled_execution_time.date()
        return dg.RunRequest(
            run_key=f"reconcile-{today}",
            tags={**range_tags(settings.partitions_start, today), FULL_HISTORY_TAG: "true"},
        )

    return [daily, weekly]
