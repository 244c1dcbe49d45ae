"""Alerts to the team's webhook over verified HTTPS: failed runs, and data later than its deadline."""

import datetime as dt
import json
import socket

import dagster as dg
import pytest

from fo_assets.alerts import LOAD_DEADLINE_HOUR, evaluate_freshness, latest_deadline, watch_list
from fo_assets.definitions import ENTITY_JOB, build_definitions
from fo_assets.sandbox.httpserver import HttpsServer, Request, Response
from fo_assets.sandbox.tls import ensure_tls


@pytest.fixture
def webhook(tmp_path, monkeypatch):
    """A Slack/Teams-style incoming webhook on loopback, trusted the way a corporate CA would be."""
    received: list[dict] = []

    async def handle(request: Request) -> Response:
        received.append({"path": request.path, "body": json.loads(request.body)})
        return Response(200, b"ok", "text/plain")

    tls = ensure_tls(tmp_path / "tls")
    sock = socket.create_server(("127.0.0.1", 0))
    server = HttpsServer(handle, tls.server_context(), sock)
    server.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_path))
    yield f"https://127.0.0.1:{sock.getsockname()[1]}/hooks/fo", received
    server.stop()
    sock.close()


def test_a_failed_run_is_reported_to_the_webhook(webhook, monkeypatch, tmp_path):
    url, received = webhook
    monkeypatch.setenv("FO_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("FO_ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("FO_DAGSTER_UI_URL", "https://dagster.example/")
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    # With no F&O configured a load fails: a real failed run to report.
    result = defs.resolve_job_def(ENTITY_JOB).execute_in_process(
        instance=instance, partition_key="2026-06-15",
        asset_selection=[dg.AssetKey(["fo", "purchase_order_headers_v2"])],
        raise_on_error=False)
    assert not result.success
    (record,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    failure = record.dagster_event
    sensor = defs.resolve_sensor_def("fo_alert_on_failure")
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_instance=instance, dagster_run=result.dagster_run, dagster_event=failure,
    ).for_run_failure()
    sensor(context)
    (post,) = received
    assert post["path"] == "/hooks/fo"
    lines = post["body"]["text"].splitlines()
    assert lines[0] == "fo-assets run failed: fo/purchase_order_headers_v2 (partition 2026-06-15)"
    assert "FO_BASE_URL is not set" in lines[1]  # the step's own error, not just "the run failed"
    assert lines[-1] == f"https://dagster.example/runs/{result.run_id}"


def test_data_later_than_its_deadline_is_reported_once(webhook, monkeypatch, tmp_path):
    url, received = webhook
    monkeypatch.setenv("FO_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("FO_ALERT_WEBHOOK_URL", url)
    defs = build_definitions()
    watched = watch_list(defs.assets)
    instance = dg.DagsterInstance.ephemeral()
    orders, vendors = dg.AssetKey(["fo", "purchase_order_headers_v2"]), dg.AssetKey(["fo", "vendors_v2"])
    # Loaded now: yesterday's partition of the orders (after it closed) and the vendors.
    now = dt.datetime.now(dt.timezone.utc)
    yesterday = (now.date() - dt.timedelta(days=1)).isoformat()
    instance.report_runless_asset_event(dg.AssetMaterialization(orders, partition=yesterday))
    instance.report_runless_asset_event(dg.AssetMaterialization(vendors))

    # A day later, nothing was loaded again: the deadline passed for every table, and the day that closed
    # in between was never loaded.
    later = now + dt.timedelta(days=1, hours=8)
    result = evaluate_freshness(instance, watched, later, None)
    (post,) = received
    text = post["body"]["text"]
    assert text.startswith("fo-assets data is late:")
    assert "fo/vendors_v2 was not loaded between" in text
    day = latest_deadline(later, LOAD_DEADLINE_HOUR).date() - dt.timedelta(days=1)
    assert f"fo/purchase_order_headers_v2: day {day} was not loaded after it closed" in text
    assert "fo_model/trial_balance was not loaded" in text
    # The same lateness is not sent again; an event refresh recorded as an observation does not fix it.
    instance.report_runless_asset_event(dg.AssetObservation(orders, partition=day.isoformat()))
    evaluate_freshness(instance, watched, later + dt.timedelta(minutes=5), result.cursor)
    assert len(received) == 1


def test_data_on_time_raises_no_alert(webhook, monkeypatch, tmp_path):
    url, received = webhook
    monkeypatch.setenv("FO_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("FO_ALERT_WEBHOOK_URL", url)
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    now = dt.datetime.now(dt.timezone.utc)
    watched = watch_list(defs.assets)
    for item in watched:
        instance.report_runless_asset_event(dg.AssetMaterialization(item.key))
        if item.by_day:
            day = latest_deadline(now, item.deadline_hour).date() - dt.timedelta(days=1)
            instance.report_runless_asset_event(dg.AssetMaterialization(item.key, partition=day.isoformat()))
    result = evaluate_freshness(instance, watched, now + dt.timedelta(minutes=1), None)
    assert received == [] and "all on time" in str(result.skip_reason)
