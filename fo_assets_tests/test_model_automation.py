"""When the model runs: once a day after the daily load, only when the entity tables' blocking check
passed, and never because an event refreshed a few records (the automation evaluated on a real instance)."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from fo_assets.checks import KEYS_UNIQUE
from fo_assets.definitions import build_definitions
from fo_assets.model import MODEL_DEPS, MODEL_TABLES

TRIAL_BALANCE = dg.AssetKey(["fo_model", "trial_balance"])
DAY = dt.datetime(2026, 6, 15, tzinfo=dt.timezone.utc)


@pytest.fixture
def defs(monkeypatch, tmp_path) -> dg.Definitions:
    monkeypatch.setenv("FO_ASSETS_HOME", str(tmp_path))
    return build_definitions()


def _deps() -> list[dg.AssetKey]:
    return sorted({dg.AssetKey(["fo", table]) for model in MODEL_TABLES for table in MODEL_DEPS[model]})


def _load(instance: dg.DagsterInstance, defs: dg.Definitions, passed: dict[dg.AssetKey, bool] | None = None) -> None:
    """The daily load as the event log sees it: every entity materialized, its table check evaluated."""
    for key in _deps():
        partitioned = defs.resolve_assets_def(key).partitions_def is not None
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition="2026-06-14" if partitioned else None))
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=key, check_name=KEYS_UNIQUE, passed=(passed or {}).get(key, True), blocking=True))


def _requested(defs: dg.Definitions, instance: dg.DagsterInstance, at: dt.datetime, cursor=None):
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=at, cursor=cursor)
    models = [dg.AssetKey(["fo_model", table]) for table in MODEL_TABLES]
    return {key for key in models if result.get_requested_partitions(key)}, result.cursor


def test_the_model_waits_for_the_blocking_check_then_runs_once_a_day(defs):
    instance = dg.DagsterInstance.ephemeral()
    _, cursor = _requested(defs, instance, DAY.replace(hour=2))  # before the daily load's tick
    duplicate = dg.AssetKey(["fo", "general_journal_account_entry_bi_entities"])
    _load(instance, defs, passed={duplicate: False})
    requested, cursor = _requested(defs, instance, DAY.replace(hour=4), cursor)
    # The ledger lines have duplicate keys: the trial balance waits; models not built on them run.
    assert {k.path[-1] for k in requested} == {"spend_by_vendor_month", "po_invoice_match"}

    instance.report_runless_asset_event(dg.AssetCheckEvaluation(
        asset_key=duplicate, check_name=KEYS_UNIQUE, passed=True, blocking=True))
    requested, cursor = _requested(defs, instance, DAY.replace(hour=4, minute=30), cursor)
    assert requested == {TRIAL_BALANCE}


def test_event_refreshes_and_later_loads_do_not_run_the_model_again_that_day(defs):
    instance = dg.DagsterInstance.ephemeral()
    _, cursor = _requested(defs, instance, DAY.replace(hour=2))
    _load(instance, defs)
    requested, cursor = _requested(defs, instance, DAY.replace(hour=4), cursor)
    assert TRIAL_BALANCE in requested
    for table in MODEL_TABLES:
        instance.report_runless_asset_event(dg.AssetMaterialization(dg.AssetKey(["fo_model", table])))
    # During the day: event refreshes (observations) and a backfill (materializations) of some entities.
    orders = dg.AssetKey(["fo", "purchase_order_headers_v2"])
    instance.report_runless_asset_event(dg.AssetObservation(orders, partition="2026-06-15"))
    instance.report_runless_asset_event(dg.AssetMaterialization(orders, partition="2026-03-01"))
    requested, cursor = _requested(defs, instance, DAY.replace(hour=14), cursor)
    assert not requested
    # The next day's load runs it again.
    _load(instance, defs)
    requested, _ = _requested(defs, instance, DAY.replace(hour=4) + dt.timedelta(days=1), cursor)
    assert TRIAL_BALANCE in requested
