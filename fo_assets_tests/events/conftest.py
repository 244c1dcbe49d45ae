"""Fixtures for the Business Events tests."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from fo_assets.sandbox.tls import TlsFiles, ensure_tls
from fo_assets_tests.support.events import Backend


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    return ensure_tls(tmp_path_factory.mktemp("tls"))


def _postgres_backend(request: pytest.FixtureRequest, home: Path) -> Backend:
    # A schema per test: the tests of a module share its server, not its rows.
    schema = f"inbox_{uuid.uuid4().hex[:12]}"
    return Backend({"FO_ASSETS_HOME": str(home), **request.getfixturevalue("postgres").inbox_env(schema)})


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """An inbox configured as an operator does: the default SQLite under the home, or PostgreSQL."""
    if request.param == "postgres":
        return _postgres_backend(request, tmp_path / "home")
    return Backend({"FO_ASSETS_HOME": str(tmp_path / "home")})


@pytest.fixture
def pg_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return _postgres_backend(request, tmp_path / "home")
