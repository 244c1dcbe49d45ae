"""Static checks over fo_assets/: ruff (pyflakes, import order, pyupgrade, docstrings) and mypy, both clean.

Their configuration, and the rule on `from __future__ import annotations`, is in pyproject.toml.
"""

from __future__ import annotations

import ast
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


# Definitions whose annotations Dagster reads when it builds them: decorated functions and config classes.
_DAGSTER_DECORATORS = {"asset", "multi_asset", "op", "job", "graph", "sensor", "run_failure_sensor",
                       "run_status_sensor", "schedule", "asset_check", "multi_asset_check", "definitions"}
_DAGSTER_BASES = {"Config", "ConfigurableResource", "ConfigurableIOManager"}


def _introspected(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(target, ast.Attribute) and target.attr in _DAGSTER_DECORATORS:
                    return True
        if isinstance(node, ast.ClassDef):
            if any(isinstance(b, ast.Attribute) and b.attr in _DAGSTER_BASES for b in node.bases):
                return True
    return False


def test_modules_dagster_introspects_keep_their_annotations_real():
    """The rule written beside the checkers' configuration in pyproject.toml."""
    offending = []
    for path in sorted((REPO / "fo_assets").rglob("*.py")):
        tree = ast.parse(path.read_text())
        future = any(isinstance(n, ast.ImportFrom) and n.module == "__future__"
                     and any(a.name == "annotations" for a in n.names) for n in tree.body)
        if future and _introspected(tree):
            offending.append(str(path.relative_to(REPO)))
    assert not offending, "Dagster reads these modules' annotations; drop `from __future__ import annotations`"
