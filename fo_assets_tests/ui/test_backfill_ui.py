"""The Dagster UI end to end: a 3-day backfill of the day-read entities, launched from the asset graph.

`dagster dev` serves the project's workspace and dagster.yaml against the sandbox tenant; the backfill
runs through the real daemon and run launcher. Everything asserted is what the UI shows. With
UPDATE_DOCS_IMAGES=1 the test also refreshes docs/images/asset-graph.png, the README's picture.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections import Counter, defaultdict
from typing import Iterator
from urllib.parse import quote

import dagster as dg
import pytest
from playwright.sync_api import Page, expect

from fo_assets.catalog import STANDARD, EntitySpec
from fo_assets.checks import DAY_CHECKS, check_specs
from fo_assets.partitions import daily_partitions
from fo_assets.sandbox import Sandbox
from fo_assets_tests.support.tenant import ANCHOR, COMPANIES, point_at
from fo_assets_tests.support.truth import truth
from fo_assets_tests.ui.conftest import ARTIFACTS
from fo_assets_tests.ui.dagster_dev import REPO, dagster_dev, stop_schedules

DAYS = [(ANCHOR - dt.timedelta(days=back)).isoformat() for back in (2, 1, 0)]
DAY_RANGE = f"[{DAYS[0]}...{DAYS[-1]}]"
# The entities read by day (daily partitions); master data and pending invoices are read whole, unpartitioned.
BY_DAY = [spec for spec in STANDARD if STANDARD.mode_of(spec) != "snapshot"]
VOUCHERS = STANDARD.spec_for("GeneralJournalEntryBiEntities")
# A run takes seconds, but the daemon and the run launcher each add a few on a busy 2-core machine.
BACKFILL_TIMEOUT_MS = 180_000
DOCS_IMAGE = REPO / "docs" / "images" / "asset-graph.png"
# The README's picture: the purchase-to-pay entities and the model that matches them.
DOCS_SELECTION = '+key:"fo_model/po_invoice_match"'


@pytest.fixture
def dagster_ui(small_sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[str]:
    point_at(monkeypatch, small_sandbox, tmp_path / "fo_home")
    with dagster_dev(dict(os.environ), tmp_path / "dagster_home", ARTIFACTS / "dagster-dev.log") as url:
        # Only the backfill's runs: a test running across 03:00 UTC also got the daily window's run.
        assert set(stop_schedules(url)) >= {"fo_daily_trailing_window", "fo_weekly_reconciliation"}
        yield url


def _check_names() -> dict[dg.AssetKey, list[str]]:
    names: dict[dg.AssetKey, list[str]] = defaultdict(list)
    for check in check_specs(BY_DAY, daily_partitions(ANCHOR)):
        names[check.asset_key].append(check.name)
    return names


def _launch_backfill_from_the_asset_graph(page: Page, ui: str) -> None:
    page.goto(f"{ui}/asset-groups")
    groups = {spec.group for spec in STANDARD}
    for group in groups | {"model"}:
        expect(page.get_by_role("button", name=f"asset_group {group}")).to_be_visible()
    page.get_by_role("textbox", name="Search and filter assets").focus()
    page.keyboard.type(" or ".join(f'key:"{"/".join(spec.asset_key_path)}"' for spec in BY_DAY))
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="asset_group model")).to_have_count(0)
    for group in {spec.group for spec in BY_DAY}:
        expect(page.get_by_role("button", name=f"asset_group {group}")).to_be_visible()

    page.get_by_role("button", name="Materialize all").click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
    expect(dialog).to_contain_text(f"Launch runs to materialize {len(BY_DAY)} assets")
    # With more than 90 days of partitions the dialog opens on the last 90 only, and says so.
    show_all = dialog.get_by_text("Show all partitions")
    days = dialog.get_by_placeholder("ex: ")
    expect(show_all.or_(days)).to_be_visible()
    if show_all.is_visible():
        show_all.click()
    days.fill(DAY_RANGE)
    days.press("Enter")
    expect(dialog).to_contain_text("3 partitions")
    dialog.get_by_role("button", name="Launch backfill").click()
    page.get_by_role("link", name="View", exact=True).click()  # in the toast that names the new backfill


def _assert_backfill_succeeded_as_one_run(page: Page, checks: dict[dg.AssetKey, list[str]]) -> None:
    expect(page).to_have_url(re.compile(r"/runs/b/\w+"))
    status = page.get_by_text("Status", exact=True).locator("xpath=following-sibling::*[1]")
    expect(status).to_have_text(re.compile("Succeeded|Completed|Fail|Cancel"), timeout=BACKFILL_TIMEOUT_MS)
    page.screenshot(path=str(ARTIFACTS / "ui-backfill.png"))
    expect(status).to_have_text("Succeeded")
    expect(page.get_by_text(f"{DAYS[0]}...{DAYS[-1]}")).to_be_visible()
    expect(page.get_by_text("100% completed")).to_have_count(len(BY_DAY))
    page.get_by_role("tab", name="Runs").click()
    # BackfillPolicy.multi_run(31 days): the three days of every entity and all their checks are one run.
    expect(page.get_by_role("link", name=re.compile(r"^run [0-9a-f]{8}$"))).to_have_count(1)
    for target in (f"{len(BY_DAY)} assets", f"{sum(map(len, checks.values()))} checks", "Success"):
        expect(page.get_by_text(target, exact=True)).to_be_visible()


def _assert_days_materialized(page: Page, ui: str, key: dg.AssetKey) -> None:
    page.goto(f"{ui}/assets/{'/'.join(key.path)}?view=partitions")
    days = page.get_by_placeholder("ex: ")
    days.fill(DAY_RANGE)
    days.press("Enter")
    for label in ("3 Partitions Selected", "Materialized (3)", "Missing (0)", "Failed (0)"):
        expect(page.get_by_text(label, exact=True)).to_be_visible()


def _assert_each_day_has_its_own_row_count(page: Page, ui: str, spec: EntitySpec, sandbox: Sandbox) -> None:
    """A range run records each day's rows on that day, not the range's total repeated on every day."""
    want = Counter(row[spec.window_field].isoformat()
                   for company in COMPANIES for row in truth(sandbox, spec.entity_set, company))
    sizes = {day: want[day] for day in DAYS}
    assert len(set(sizes.values())) > 1, f"the days must differ in size for the test to mean something: {sizes}"
    for day, rows in sizes.items():
        page.goto(f"{ui}/assets/{'/'.join(spec.asset_key_path)}?view=partitions&partition={day}")
        row_count = page.get_by_role("row").filter(has_text="dagster/partition_row_count").get_by_role("cell")
        expect(row_count.nth(1), f"{spec.entity_set} on {day}").to_have_text(str(rows))


def _assert_checks_passed(page: Page, key: dg.AssetKey, names: list[str]) -> None:
    page.get_by_role("tab", name="Checks").click()
    expect(page.get_by_text(f"Checks ({len(names)})", exact=True)).to_be_visible()
    for name in names:
        item = page.get_by_title(name, exact=True)
        expect(item.locator("xpath=following-sibling::span[1]")).to_have_text("Succeeded")
        if name not in DAY_CHECKS:
            continue  # a table check: one result for the table, not one per day
        item.click()
        expect(page).to_have_url(re.compile(rf"checkDetail={name}$"))
        page.get_by_role("tab", name="Partitions").last.click()  # the check's own days, not the asset's
        for label in ("Passed (3)", "Failed (0)", "Execution Failed (0)", "Skipped (0)"):
            expect(page.get_by_text(label, exact=True), f"{key.to_user_string()} {name}").to_be_visible()


def _save_docs_image(page: Page, ui: str) -> None:
    """The README's picture, once the model has been built from the new data by its automation condition."""
    page.set_viewport_size({"width": 1500, "height": 820})
    page.goto(f"{ui}/asset-groups~{quote(DOCS_SELECTION, safe='')}")
    page.get_by_role("button", name="settings", exact=True).click()
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.get_by_role("button", name="Hide navigation").click()
    expect(page.get_by_text("Materialized", exact=True)).to_be_visible(timeout=BACKFILL_TIMEOUT_MS)
    page.reload()  # the graph is fitted to the page once, when it loads: now with the groups open
    expect(page.get_by_text("Materialized", exact=True)).to_be_visible()
    DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMAGE))


@pytest.mark.browser
@pytest.mark.timeout(420)
def test_a_backfill_launched_from_the_asset_graph_lands_three_days_with_passing_checks(
        dagster_ui, page, small_sandbox):
    ARTIFACTS.mkdir(exist_ok=True)
    _launch_backfill_from_the_asset_graph(page, dagster_ui)
    checks = _check_names()
    _assert_backfill_succeeded_as_one_run(page, checks)
    for spec in BY_DAY:
        key = dg.AssetKey(spec.asset_key_path)
        _assert_days_materialized(page, dagster_ui, key)
        _assert_checks_passed(page, key, checks[key])
    _assert_each_day_has_its_own_row_count(page, dagster_ui, VOUCHERS, small_sandbox)
    page.screenshot(path=str(ARTIFACTS / "ui-checks.png"))
    if os.environ.get("UPDATE_DOCS_IMAGES") == "1":
        _save_docs_image(page, dagster_ui)
