"""Sensors: Business Events become targeted pulls; failed runs become a message to the team."""


import hashlib

import dagster as dg
import httpx
from dagster_shared.error import SerializableErrorInfo

from fo_assets.dynamics.events import EventFormatError, Target, collapse, targets
from fo_assets.inbox import open_inbox
from fo_assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from fo_assets.settings import load_settings

# Events read per tick: a burst of thousands becomes a few runs of bounded size rather than one huge one.
MAX_EVENTS_PER_RUN = 500


def run_key(event_ids: list[str]) -> str:
    """The same events always give the same key, so a re-evaluated tick never launches twice."""
    return "events-" + hashlib.sha256("\n".join(sorted(event_ids)).encode()).hexdigest()[:32]


def build_events_sensor(job: dg.JobDefinition, config_file: str | None = None) -> dg.SensorDefinition:
    @dg.sensor(
        name="fo_business_events",
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Turns F&O Business Events from the inbox into targeted re-reads of the named records.",
    )
    def business_events(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        settings = load_settings(config_file=config_file)
        # A SQLite inbox appears with the first event received; a PostgreSQL one is created when opened.
        if settings.inbox_postgres is None and not settings.inbox_path.exists():
            return dg.SensorResult(skip_reason=f"no event inbox yet at {settings.inbox_path}")
        cursor = int(context.cursor or 0)
        stored, new_cursor = open_inbox(settings).read_after(cursor, MAX_EVENTS_PER_RUN)
        if not stored:
            return dg.SensorResult(skip_reason="no new events")
        found: list[Target] = []
        event_ids = []
        for item in stored:
            event = item.event
            try:
                named = targets(event)
            except EventFormatError as exc:
                context.log.warning(f"skipping event: {exc}")
                continue
            if not named:
                context.log.info(f"event {event.event_id}: no catalog entity listens to {event.business_event_id}")
                continue
            found += named
            event_ids.append(event.event_id)
        if not found:
            return dg.SensorResult(skip_reason="no events that name catalog records", cursor=str(new_cursor))
        config = {
            "event_ids": event_ids,
            "targets": [
                {"entity_set": t.entity_set, "company": t.company, "lookup": {k: str(v) for k, v in t.lookup}}
                for t in collapse(found)
            ],
        }
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=run_key(event_ids),
                    run_config={"ops": {"refresh_records": {"config": config}}},
                    tags={"fo/events": str(len(event_ids))},
                )
            ],
            cursor=str(new_cursor),
        )

    return business_events


def failure_message(run: dg.DagsterRun, error: str, run_url: str | None) -> dict[str, str]:
    """The webhook body: "text" is what both Slack incoming webhooks and Teams' simple payload read."""
    tags = run.tags
    partition = tags.get("dagster/partition") or (
        f"{tags[RANGE_START_TAG]}..{tags[RANGE_END_TAG]}" if RANGE_START_TAG in tags else "none"
    )
    assets = ", ".join(k.to_user_string() for k in (run.asset_selection or [])) or run.job_name
    link = run_url or f"run {run.run_id}"
    return {"text": f"fo-assets run failed: {assets} (partition {partition})\n{error[:500]}\n{link}"}


def _innermost(error: SerializableErrorInfo) -> str:
    """Dagster wraps a step's exception in its own; the user's error is at the end of the cause chain."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def build_failure_sensor(config_file: str | None = None) -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name="fo_alert_on_failure",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Posts a short message for every failed run to FO_ALERT_WEBHOOK_URL (Teams or Slack).",
    )
    def alert_on_failure(context: dg.RunFailureSensorContext) -> dg.SkipReason | None:
        settings = load_settings(config_file=config_file)
        if not settings.alert_webhook_url:
            return dg.SkipReason("FO_ALERT_WEBHOOK_URL is not set")
        base = settings.dagster_ui_url
        run_url = f"{base}/runs/{context.dagster_run.run_id}" if base else None
        # The steps' own errors say what went wrong; the run failure event only says that steps failed.
        errors = [_innermost(e.event_specific_data.error) for e in context.get_step_failure_events()
                  if e.event_specific_data and e.event_specific_data.error]
        error = "\n".join(errors) or context.failure_event.message or "unknown error"
        body = failure_message(context.dagster_run, error, run_url)
        httpx.post(settings.alert_webhook_url, json=body, timeout=10).raise_for_status()
        return None

    return alert_on_failure
