"""Fixtures for the deployment tests: customer master keys (PostgreSQL is in fo_assets_tests/postgres_fixture.py)."""

from __future__ import annotations

import pytest

from fo_assets.secrets import generate_master_key


@pytest.fixture
def master_key() -> str:
    return generate_master_key()
