"""Schedules: a daily trailing window catches what events missed; a weekly reconciliation catches the rest."""


import datetime as dt

import dagster as dg

from fo_assets.partitions import range_tags
from fo_assets.settings import load_settings

DAILY_CRON = "0 3 * * *"
WEEKLY_CRON = "0 4 * * 0"


def trailing_window(today: dt.date, days: int, first: dt.date) -> tuple[dt.date, dt.date]:
    """The last ``days`` partitions up to and including today (never before the first partition)."""
    return max(first, today - dt.timedelta(days=days - 1)), today


def build_schedules(entity_job: str, reconciliation_job: str, config_file: str | None = None
                    ) -> list[dg.ScheduleDefinition]:
    """The schedules of the jobs named ``entity_job`` and ``reconciliation_job``."""
    @dg.schedule(
        name="fo_daily_trailing_window",
        job_name=entity_job,
        cron_schedule=DAILY_CRON,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Re-reads the trailing window of every entity read by day (late and back-dated postings, "
        "anything an event missed) and every entity read whole, as one run.",
    )
    def daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        settings = load_settings(config_file=config_file)
        today = context.scheduled_execution_time.date()
        first, last = trailing_window(today, settings.trailing_days, settings.partitions_start)
        return dg.RunRequest(run_key=f"daily-{today}", tags=range_tags(first, last))

    weekly = dg.ScheduleDefinition(
        name="fo_weekly_reconciliation",
        job_name=reconciliation_job,
        cron_schedule=WEEKLY_CRON,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Re-reads the full history of every entity read by day, per company: status changes and "
        "deletes on old records are invisible to a trailing date window.",
    )
    return [daily, weekly]
