"""The model job's Databricks Asset Bundle, checked as ``databricks bundle deploy -t prod`` would check it.

No workspace or Databricks CLI runs here. The bundle is validated against ``bundle.schema.json`` (the
rules of the bundle documentation that this bundle touches, docs/databricks.md) with check-jsonschema,
and against what the schema cannot say: every variable it uses is declared, every SQL file exists,
and the job defines every parameter fo-assets sends (the Jobs API refuses any other).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from fo_assets.sinks.databricks_job import ATTEMPT_PARAMETER, model_job_parameters
from fo_assets_tests.deploy.customers import BIN, REPO
from fo_assets_tests.model_job import BUNDLE, JOB_KEY
from fo_assets_tests.postgres_fixture import unavailable

SCHEMA = Path(__file__).with_name("bundle.schema.json")


def _check(bundle: Path) -> subprocess.CompletedProcess:
    tool = BIN / "check-jsonschema"
    if not tool.exists():
        unavailable("check-jsonschema is not installed (the project's test extra)")
    return subprocess.run([str(tool), "--schemafile", str(SCHEMA), str(bundle)], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_the_bundle_passes_the_deploy_rules():
    result = _check(BUNDLE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_bundle_declares_what_it_uses_and_defines_what_fo_assets_sends():
    bundle = yaml.safe_load(BUNDLE.read_text())
    used = set(re.findall(r"\$\{var\.([A-Za-z0-9_]+)\}", BUNDLE.read_text()))
    assert used <= set(bundle["variables"]), f"undeclared variables: {used - set(bundle['variables'])}"
    job = bundle["resources"]["jobs"][JOB_KEY]
    for task in job["tasks"]:
        assert (BUNDLE.parent / task["sql_task"]["file"]["path"]).is_file(), task["task_key"]
    sent = {*model_job_parameters(["b-1"], "main", "fo"), ATTEMPT_PARAMETER}
    assert sent <= {p["name"] for p in job["parameters"]}


@pytest.mark.parametrize("path, value, named", [
    (("targets", "prod", "workspace"), None, "workspace"),  # mode: production without root_path
    (("targets", "prod", "workspace", "root_path"), "~/.bundle/fo_assets_model/prod", "root_path"),
    (("targets", "prod", "run_as"), None, "run_as"),
    (("resources", "jobs", JOB_KEY, "queue"), None, "queue"),  # a trigger during a run would be SKIPPED
    (("resources", "jobs", JOB_KEY, "tasks", 0, "sql_task", "warehouse_id"), None, "warehouse_id"),
    (("resources", "jobs", JOB_KEY, "max_concurent_runs"), 1, "max_concurent_runs"),  # a typo
])
def test_the_rules_refuse_what_deploy_or_the_jobs_api_would_not_take(tmp_path, path, value, named):
    bundle = yaml.safe_load(BUNDLE.read_text())
    node = bundle
    for step in path[:-1]:
        node = node[step]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    broken = tmp_path / "databricks.yml"
    broken.write_text(yaml.safe_dump(bundle))

    result = _check(broken)

    assert result.returncode == 1, result.stdout
    assert named in result.stdout
