"""Fixtures for sink tests: the Databricks double (reached through the real SDK) and both sinks."""

from __future__ import annotations

from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient

from fo_assets.sinks.base import Sink
from fo_assets.sinks.databricks import DatabricksSink, connect_workspace
from fo_assets.sinks.local_delta import LocalDeltaSink
from fo_assets_tests.databricks_double import DatabricksDouble

CATALOG, SCHEMA, VOLUME = "main", "fo", "staging"


@pytest.fixture
def workspace(dbx: DatabricksDouble) -> WorkspaceClient:
    return connect_workspace(dbx.host, dbx.client_id, dbx.client_secret, timeout_s=10)


@pytest.fixture
def databricks_sink(dbx: DatabricksDouble, workspace: WorkspaceClient) -> DatabricksSink:
    return DatabricksSink(workspace, dbx.warehouse_id, CATALOG, SCHEMA, VOLUME, statement_timeout_s=30)


@pytest.fixture(params=["local_delta", "databricks"])
def sink(request: pytest.FixtureRequest, tmp_path: Path) -> Sink:
    """Each semantic test runs once per sink: both must land the same rows."""
    if request.param == "local_delta":
        return LocalDeltaSink(tmp_path / "delta")
    return request.getfixturevalue("databricks_sink")
