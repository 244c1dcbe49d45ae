"""The `postgres` fixture, for every test that needs a real PostgreSQL server (registered by conftest.py)."""

from __future__ import annotations

import os
from typing import Iterator, NoReturn

import pytest

from fo_assets_tests.deploy.postgres import Postgres, find_bindir, running_postgres


def unavailable(message: str) -> NoReturn:
    """A tool a test needs is missing: CI installs every one, so there this fails; elsewhere it skips."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    bindir = find_bindir()
    if bindir is None:
        unavailable("PostgreSQL is not installed (Debian package postgresql): the production-instance and "
                    "PostgreSQL inbox tests need it")
    yield from running_postgres(bindir)
