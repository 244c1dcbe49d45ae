"""The Business Events sensor: events from the inbox become targeted pulls (alerts are in alerts.py)."""


import hashlib

import dagster as dg

from fo_assets.dynamics.events import EventFormatError, Target, collapse, targets
from fo_assets.inbox import open_inbox
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
