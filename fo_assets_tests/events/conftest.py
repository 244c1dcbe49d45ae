"""Fixtures for the Business Events tests."""

from __future__ import annotations

import pytest

from fo_assets.sandbox.tls import TlsFiles, ensure_tls


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    return ensure_tls(tmp_path_factory.mktemp("tls"))
