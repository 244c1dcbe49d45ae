"""The test tenant's fixed facts and fo-assets configured against a sandbox, as an operator configures it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from fo_assets.sandbox import Sandbox
from fo_assets.settings import Settings, load_settings

# Fixed, so tests are deterministic whatever the day they run (the partitions start before it).
ANCHOR = dt.date(2026, 6, 15)
COMPANIES = ("usmf", "demf", "gbsi")


def point_at(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, home: Path, **extra: str) -> None:
    """Configure fo-assets the way an operator does: export what the sandbox prints."""
    env = {**sandbox.env(), "FO_ASSETS_HOME": str(home), "FO_PARTITIONS_START": "2026-05-01",
           "FO_REQUEST_TIMEOUT": "10", "FO_WARMUP_TIMEOUT": "30", **extra}
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def settings_for(sandbox: Sandbox, home: Path, **extra: str) -> Settings:
    env = {**sandbox.env(), "FO_ASSETS_HOME": str(home), "FO_REQUEST_TIMEOUT": "10", "FO_WARMUP_TIMEOUT": "30", **extra}
    return load_settings(env)
