"""Alerts to the team's webhook (Teams or Slack, ``FO_ALERT_WEBHOOK_URL``): failed runs and late data.

Late data follows the freshness policies the assets declare (Dagster shows their state in the UI; these
alerts say it out loud), plus one rule Dagster's policies cannot express: for every entity read by day, the
last closed day must have been loaded after it closed by the deadline. A policy evaluates the latest
materialization of any day, so an event refresh or a backfill of last year would otherwise look fresh.
"""

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import dagster as dg
import httpx

from fo_assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from fo_assets.settings import load_alert_settings

# Daily deadlines, hours in UTC: the load starts at 03:00 (schedules.DAILY_CRON).
LOAD_DEADLINE_HOUR, LOAD_WINDOW = 6, dt.timedelta(hours=3)
MODEL_DEADLINE_HOUR, MODEL_WINDOW = 7, dt.timedelta(hours=4)
ENTITY_FRESHNESS = dg.FreshnessPolicy.cron(deadline_cron=f"0 {LOAD_DEADLINE_HOUR} * * *",
                                           lower_bound_delta=LOAD_WINDOW, timezone="UTC")
MODEL_FRESHNESS = dg.FreshnessPolicy.cron(deadline_cron=f"0 {MODEL_DEADLINE_HOUR} * * *",
                                          lower_bound_delta=MODEL_WINDOW, timezone="UTC")


def post(url: str, text: str) -> None:
    """The webhook body: "text" is what both Slack incoming webhooks and Teams' simple payload read."""
    httpx.post(url, json={"text": text}, timeout=10).raise_for_status()


# -- failed runs ----------------------------------------------------------------------------------------


class _Error(Protocol):
    @property
    def message(self) -> str: ...

    @property
    def cause(self) -> "_Error | None": ...


def failure_message(run: dg.DagsterRun, error: str, run_url: str | None) -> str:
    """The alert text of a failed run: job, partitions, the steps' error and a link to the run."""
    tags = run.tags
    partition = tags.get("dagster/partition") or (
        f"{tags[RANGE_START_TAG]}..{tags[RANGE_END_TAG]}" if RANGE_START_TAG in tags else "none"
    )
    assets = ", ".join(k.to_user_string() for k in (run.asset_selection or [])) or run.job_name
    link = run_url or f"run {run.run_id}"
    return f"fo-assets run failed: {assets} (partition {partition})\n{error[:500]}\n{link}"


def _innermost(error: _Error) -> str:
    """Dagster wraps a step's exception in its own; the user's error is at the end of the cause chain."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def build_failure_sensor(config_file: str | None = None) -> dg.SensorDefinition:
    """The sensor that posts every failed run to FO_ALERT_WEBHOOK_URL."""
    @dg.run_failure_sensor(
        name="fo_alert_on_failure",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Posts a short message for every failed run to FO_ALERT_WEBHOOK_URL (Teams or Slack).",
    )
    def alert_on_failure(context: dg.RunFailureSensorContext) -> dg.SkipReason | None:
        settings = load_alert_settings(config_file=config_file)
        if not settings.webhook_url:
            return dg.SkipReason("FO_ALERT_WEBHOOK_URL is not set")
        base = settings.dagster_ui_url
        run_url = f"{base}/runs/{context.dagster_run.run_id}" if base else None
        # The steps' own errors say what went wrong; the run failure event only says that steps failed.
        errors = [_innermost(e.step_failure_data.error) for e in context.get_step_failure_events()
                  if e.step_failure_data.error]
        error = "\n".join(errors) or context.failure_event.message or "unknown error"
        post(settings.webhook_url, failure_message(context.dagster_run, error, run_url))
        return None

    return alert_on_failure


# -- late data ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Watched:
    """An asset the freshness sensor watches: the hour by which it must be loaded, and over what window."""
    key: dg.AssetKey
    deadline_hour: int
    window: dt.timedelta
    by_day: bool  # partitioned by day: the last closed day must be loaded after it closed


def watch_list(assets: Iterable[dg.AssetsDefinition]) -> list[Watched]:
    """Every entity and model asset with the deadline of its freshness policy."""
    found = []
    for definition in assets:
        for key in definition.keys:
            model = key.path[-2:-1] == ["fo_model"]
            found.append(Watched(key, MODEL_DEADLINE_HOUR if model else LOAD_DEADLINE_HOUR,
                                 MODEL_WINDOW if model else LOAD_WINDOW, by_day=definition.partitions_def is not None))
    return found


def latest_deadline(now: dt.datetime, hour: int) -> dt.datetime:
    """The most recent past (or current) time of day ``hour`` (UTC), at or before ``now``."""
    today = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return today if now >= today else today - dt.timedelta(days=1)


def late(instance: dg.DagsterInstance, watched: Iterable[Watched], now: dt.datetime) -> list[tuple[str, str]]:
    """(alert id, message) of every watched asset late at ``now``; the id is the same all day."""
    found = []
    for item in watched:
        deadline = latest_deadline(now, item.deadline_hour)
        name = item.key.to_user_string()
        last = _last(instance, item.key, None)
        if last is None or last < deadline - item.window:
            found.append((f"{name}|{deadline.date()}", f"{name} was not loaded between "
                          f"{deadline - item.window:%Y-%m-%d %H:%M} and {deadline:%H:%M} UTC (last: "
                          f"{'never' if last is None else f'{last:%Y-%m-%d %H:%M} UTC'})"))
        if item.by_day:
            day = deadline.date() - dt.timedelta(days=1)
            closed = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
            loaded = _last(instance, item.key, day.isoformat())
            if loaded is None or loaded < closed:
                found.append((f"{name}|day|{day}", f"{name}: day {day} was not loaded after it closed by "
                              f"{deadline:%Y-%m-%d %H:%M} UTC"))
    return found


def _last(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> dt.datetime | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1
    ).records
    return dt.datetime.fromtimestamp(records[0].timestamp, dt.UTC) if records else None


def build_freshness_sensor(watched: list[Watched], config_file: str | None = None) -> dg.SensorDefinition:
    """The sensor that alerts when a ``watched`` asset was not loaded by its deadline."""
    @dg.sensor(
        name="fo_freshness_alerts",
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Posts to FO_ALERT_WEBHOOK_URL when a table was not loaded by its deadline, or the last "
        "closed day of an entity read by day was not loaded after it closed.",
    )
    def freshness_alerts(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return evaluate_freshness(context.instance, watched, dt.datetime.now(dt.UTC), context.cursor,
                                  config_file)

    return freshness_alerts


def evaluate_freshness(instance: dg.DagsterInstance, watched: list[Watched], now: dt.datetime,
                       cursor: str | None, config_file: str | None = None) -> dg.SensorResult:
    """One tick: alert each lateness once (the cursor keeps the ids already sent, for two days)."""
    sent: dict[str, str] = json.loads(cursor) if cursor else {}
    settings = load_alert_settings(config_file=config_file)
    new = [(alert, text) for alert, text in late(instance, watched, now) if alert not in sent]
    if new and settings.webhook_url:
        post(settings.webhook_url, "fo-assets data is late:\n" + "\n".join(text for _, text in new))
    keep = (now - dt.timedelta(days=2)).isoformat()
    sent = {alert: at for alert, at in sent.items() if at >= keep}
    if settings.webhook_url:  # without a webhook nothing was sent: it is sent once one is set
        sent.update({alert: now.isoformat() for alert, _ in new})
    reason = (f"{len(new)} late" if new else "all on time") + ("" if settings.webhook_url else
                                                                 "; FO_ALERT_WEBHOOK_URL is not set")
    return dg.SensorResult(skip_reason=reason, cursor=json.dumps(sent, sort_keys=True))
