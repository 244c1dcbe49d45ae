"""The Business Events sensor: events from the inbox become targeted pulls (alerts are in alerts.py)."""


import datetime as dt
import hashlib
from collections import Counter

import dagster as dg
import httpx

from fo_assets.alerts import post
from fo_assets.events.inbox import STORAGE_ERRORS, Inbox, Page, open_inbox
from fo_assets.events.payload import EventFormatError, Target, collapse, refuse_wildcards, shown, targets
from fo_assets.settings import Settings, load_settings

# Events read per tick, all coalesced into one run (each record looked up once however many events name it).
# More than one client can send in a tick at the receiver's default rate (a 500-event burst, then 50 a
# second: 2,000 in 30 s), so a flood from one client cannot build a backlog that delays a real event.
MAX_EVENTS_PER_TICK = 2_000


def run_key(event_ids: list[str]) -> str:
    """The same events always give the same key, so a re-evaluated tick never launches twice."""
    return "events-" + hashlib.sha256("\n".join(sorted(event_ids)).encode()).hexdigest()[:32]


def build_events_sensor(job: dg.JobDefinition, config_file: str | None = None) -> dg.SensorDefinition:
    """The sensor that turns Business Events in the inbox into targeted refresh runs."""
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
        now = dt.datetime.now(dt.UTC)
        with open_inbox(settings) as inbox:
            page = inbox.read_page(int(context.cursor or 0), MAX_EVENTS_PER_TICK)
            waiting_since = inbox.backlog_since(page.cursor)
            _prune(context, inbox, page.cursor, now - dt.timedelta(days=settings.receiver.retention_days))
        _watch_backlog(context, settings, waiting_since, now)
        for bad in page.quarantined:
            context.log.warning(f"quarantined inbox row seq {bad.seq} (EventId {shown(bad.event_id)}): "
                                f"{shown(bad.reason, 300)}; passed over, left in the inbox")
        found, event_ids = _runnable(context, settings, page)
        if not found:
            return dg.SensorResult(skip_reason=_nothing_to_run(page), cursor=str(page.cursor))
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
            cursor=str(page.cursor),
        )

    return business_events


def _prune(context: dg.SensorEvaluationContext, inbox: Inbox, cursor: int, cutoff: dt.datetime) -> None:
    """What the cursor has passed is done with; kept a while so that F&O's resends are still recognised. A
    failure (a role without DELETE) is logged, never a failed tick: the events still run."""
    try:
        pruned = inbox.prune(cursor, cutoff)
    except STORAGE_ERRORS as exc:
        context.log.warning(f"could not prune processed events from the inbox (the role needs DELETE): {exc}")
        return
    if pruned:
        context.log.info(f"pruned {pruned} processed event(s) received before {cutoff:%Y-%m-%d %H:%M} UTC")


def _nothing_to_run(page: Page) -> str:
    return "no events that name catalog records" if page.events or page.quarantined else "no new events"


def _runnable(context: dg.SensorEvaluationContext, settings: Settings, page: Page) -> tuple[list[Target], list[str]]:
    """The targets of the page's events that may run, and those events' ids; the rest is logged, one line per
    kind (a flood of them must not become thousands of lines a tick)."""
    companies = settings.fo.legal_entities if settings.fo else None
    found: list[Target] = []
    event_ids = []
    unbound: Counter[str] = Counter()
    outside: Counter[str] = Counter()
    for item in page.events:
        event = item.event
        try:
            named = targets(event)
            refuse_wildcards(event)  # stored by a version that did not refuse them at intake
        except EventFormatError as exc:
            context.log.warning(f"skipping event: {exc}")
            continue
        strangers = sorted({t.company for t in named if t.company is not None and companies is not None
                            and t.company not in companies})
        if strangers:
            outside[strangers[0]] += 1
        elif not named:
            unbound[event.business_event_id] += 1
        else:
            found += named
            event_ids.append(event.event_id)
    for business_event_id, count in unbound.items():
        context.log.info(f"{count} event(s) {business_event_id}: no catalog entity listens to it")
    for company, count in outside.items():
        # Recorded in the inbox, never run: a refresh reads only the companies this location is set up for.
        context.log.warning(f"{count} event(s) for company {shown(company)}, which is not in FO_LEGAL_ENTITIES "
                            f"({', '.join(companies or ())}): recorded, not run")
    return found, event_ids


def _watch_backlog(context: dg.SensorEvaluationContext, settings: Settings, waiting_since: dt.datetime | None,
                   now: dt.datetime) -> None:
    """Warn on every tick while the oldest unread event waits longer than ``FO_EVENTS_BACKLOG_ALERT``, and post
    to the team's webhook on the tick it crossed that age (it was younger at the previous tick)."""
    limit = dt.timedelta(seconds=settings.receiver.backlog_alert_s)
    if waiting_since is None or now - waiting_since < limit:
        return
    waited = dt.timedelta(seconds=int((now - waiting_since).total_seconds()))
    message = (f"Business Events backlog: the oldest event the sensor has not reached arrived {waited} ago "
               f"(FO_EVENTS_BACKLOG_ALERT: {limit}); the sensor reads {MAX_EVENTS_PER_TICK} a tick")
    context.log.warning(message)
    last = context.last_tick_completion_time
    if last is not None and waiting_since <= dt.datetime.fromtimestamp(last, dt.UTC) - limit:
        return  # already overdue at the previous tick: alerted then
    if settings.alert_webhook_url:
        try:
            post(settings.alert_webhook_url, f"fo-assets: {message}")
        except httpx.HTTPError as exc:
            context.log.warning(f"could not post the backlog alert to FO_ALERT_WEBHOOK_URL: {exc}")

