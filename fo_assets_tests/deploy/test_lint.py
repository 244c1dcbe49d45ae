"""The deployment files pass their linters: hadolint for the image, yamllint for every YAML file, and the
Helm values against the schema of the chart values they may set (a typo in a key is an error there).

The linters come with the project's `test` extra; CI installs it, so there a missing linter fails.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from fo_assets_tests.deploy.customers import BIN, DEPLOY, REPO
from fo_assets_tests.postgres_fixture import unavailable

VALUES = DEPLOY / "helm" / "values.yaml"
SCHEMA = DEPLOY / "helm" / "values.schema.json"


def _tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        unavailable(f"{name} is not installed (the project's `test` extra)")
    return path


def _lint(*command: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_the_dockerfile_passes_hadolint():
    result = _lint(_tool("hadolint"), DEPLOY / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_deployment_yaml_file_passes_yamllint():
    result = _lint(_tool("yamllint"), "--strict", "-c", DEPLOY / ".yamllint", DEPLOY)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_helm_values_match_the_chart_values_schema():
    result = _lint(_tool("check-jsonschema"), "--schemafile", SCHEMA, VALUES)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path, value", [
    (("dagsterDaemon", "runRetries", "maxRetry"), 2),  # a misspelt key the chart would silently ignore
    (("concurrency", "pools", "granularity"), "job"),
    (("dagster-user-deployments", "deployments", 0, "port"), "4000"),
    (("runLauncher", "config", "k8sRunLauncher", "runK8sConfig", "containerConfigs"), {}),
    (("runLauncher", "config", "k8sRunLauncher", "imagePullPolicy"), "Sometimes"),
])
def test_the_values_schema_refuses_what_the_chart_would_not_apply(tmp_path, path, value):
    values = yaml.safe_load(VALUES.read_text())
    node = values
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    broken = tmp_path / "values.yaml"
    broken.write_text(yaml.safe_dump(values))
    result = _lint(_tool("check-jsonschema"), "--schemafile", SCHEMA, broken)
    assert result.returncode == 1, result.stdout
    assert str(path[-1]) in result.stdout or str(value) in result.stdout
