"""Fixtures of the reliability tests: a fresh tenant per test (faults are stateful), the Databricks
double, and the end-to-end stacks built on them."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterator

import pytest

from fo_assets.dynamics import odata
from fo_assets.sandbox import Sandbox, SandboxConfig
from fo_assets_tests.support.tenant import ANCHOR, COMPANIES
from fo_assets_tests.databricks_double import DatabricksDouble
from fo_assets_tests.model_job import deploy_model_job
from fo_assets_tests.reliability.stack import JOB_ID, Stack


@pytest.fixture
def scaled_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """F&O retry waits scaled down (a 429 without Retry-After waits 0.5 s, not 30 s): same code path."""
    scaled = functools.partial(odata.RetryPolicy, backoff_base_s=0.05, backoff_cap_s=1.0, default_retry_after_s=0.5)
    monkeypatch.setattr(odata, "RetryPolicy", scaled)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """Small pages, so a fault lands in the middle of a paginated read."""
    config = SandboxConfig(scale=0.1, days=10, anchor_date=ANCHOR, companies=COMPANIES, page_size=40)
    with Sandbox(config) as tenant:
        yield tenant


@pytest.fixture
def dbx(tmp_path: Path) -> Iterator[DatabricksDouble]:
    with DatabricksDouble(tmp_path / "databricks") as double:
        deploy_model_job(double, JOB_ID)
        yield double


@pytest.fixture
def stack(sandbox: Sandbox, dbx: DatabricksDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          scaled_retries: None) -> Stack:
    """Sandbox -> Dagster -> the Databricks double, configured only through the environment."""
    return Stack(sandbox, tmp_path / "home", monkeypatch, dbx)


@pytest.fixture
def local_stack(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scaled_retries: None) -> Stack:
    """Sandbox -> Dagster -> local Delta tables."""
    return Stack(sandbox, tmp_path / "home", monkeypatch)


@pytest.fixture
def ledger_sandbox() -> Iterator[Sandbox]:
    """A month of ledger at full scale, about 10,000 rows: a local merge long enough to be caught in."""
    with Sandbox(SandboxConfig(scale=1.0, days=30, anchor_date=ANCHOR, companies=COMPANIES)) as tenant:
        yield tenant
