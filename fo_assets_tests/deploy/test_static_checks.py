"""Static checks over fo_assets/: ruff (pyflakes, import order, pyupgrade, docstrings) and mypy, both clean.

Their configuration, and the rule on `from __future__ import annotations`, is in pyproject.toml.
"""

from __future__ import annotations

import subprocess

import pytest

from fo_assets_tests.deploy.customers import BIN, REPO
from fo_assets_tests.postgres_fixture import unavailable


def _check(tool: str, *args: str) -> subprocess.CompletedProcess:
    path = BIN / tool
    if not path.exists():
        unavailable(f"{tool} is not installed (the project's `test` extra)")
    return subprocess.run([str(path), *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    done = _check("ruff", "check", "--no-cache", "--output-format", "concise")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr


@pytest.mark.slow
def test_mypy_finds_nothing():
    done = _check("mypy", "--no-incremental")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr
