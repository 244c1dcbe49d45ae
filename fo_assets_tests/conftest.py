"""Fixtures shared across the suite: a small sandbox tenant and an environment pointed at it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from fo_assets.sandbox import Sandbox, SandboxConfig
from fo_assets_tests.databricks_double import DatabricksDouble
from fo_assets_tests.support.tenant import ANCHOR, COMPANIES

# A real PostgreSQL server (the `postgres` fixture), for the deploy tests and the PostgreSQL inbox alike.
pytest_plugins = ["fo_assets_tests.postgres_fixture"]



@pytest.fixture(autouse=True)
def _no_ambient_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the configuration they set: a developer's exported FO_* variables must not leak in,
    nor the Makefile's DAGSTER_HOME (a test's replay must not write into the project's instance)."""
    for name in list(os.environ):
        if name.startswith(("FO_", "DATABRICKS_")) or name == "DAGSTER_HOME":
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def small_sandbox() -> Iterator[Sandbox]:
    """A small three-company tenant, shared read-only by tests that do not change its data."""
    with Sandbox(SandboxConfig(scale=0.2, days=10, anchor_date=ANCHOR, companies=COMPANIES)) as sandbox:
        yield sandbox


@pytest.fixture
def fresh_sandbox() -> Iterator[Sandbox]:
    """A tenant of its own, for tests that change records or inject faults."""
    with Sandbox(SandboxConfig(scale=0.1, days=10, anchor_date=ANCHOR, companies=COMPANIES)) as sandbox:
        yield sandbox


@pytest.fixture
def dbx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DatabricksDouble]:
    """A Databricks workspace double on 127.0.0.1, trusted through REQUESTS_CA_BUNDLE like a real one."""
    with DatabricksDouble(tmp_path / "databricks") as double:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(double.ca_bundle_path))
        yield double
