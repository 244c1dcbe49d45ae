"""The Dagster commands users type from the project folder out of habit work there, with and without
DAGSTER_HOME: `dagster definitions validate`, `dagster asset materialize` and `dagster dev`.

Without DAGSTER_HOME Dagster makes a temporary home and reads the project's dagster.yaml from the current
folder; with it (as `make instance` sets it up) the home's dagster.yaml links to the same file.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from fo_assets.devserver import WORKSPACE
from fo_assets.sandbox import Sandbox, SandboxConfig
from fo_assets_tests.deploy.customers import BIN, REPO
from fo_assets_tests.deploy.serving import serving

pytestmark = pytest.mark.slow

HOMES = ["without DAGSTER_HOME", "with DAGSTER_HOME"]


@pytest.fixture(params=HOMES)
def env(request, tmp_path) -> dict[str, str]:
    """The environment of a user's shell in the project folder: nothing of fo-assets configured."""
    values = {k: v for k, v in os.environ.items() if not k.startswith(("FO_", "DATABRICKS_", "DAGSTER_"))}
    values["FO_ASSETS_HOME"] = str(tmp_path / "fo_assets_home")
    if request.param == "with DAGSTER_HOME":
        home = tmp_path / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").symlink_to(REPO / "dagster.yaml")  # what `make instance` does
        values["DAGSTER_HOME"] = str(home)
    return values


def _dagster(*args: str, env: dict[str, str]) -> str:
    """Runs the command in the project folder; returns its log (Dagster logs to stdout or stderr)."""
    done = subprocess.run([str(BIN / "dagster"), *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    assert done.returncode == 0, f"dagster {' '.join(args)} exited {done.returncode}:\n{done.stdout[-4000:]}"
    return done.stdout


def _temporary_homes() -> set[Path]:
    return set(REPO.glob(".tmp_dagster_home_*"))


def test_dagster_definitions_validate(env):
    before = _temporary_homes()
    log = _dagster("definitions", "validate", "-m", "fo_assets.definitions", env=env)
    assert "Validation successful for code location fo_assets.definitions" in log
    assert _temporary_homes() == before, "a temporary Dagster home was left in the project folder"


def test_dagster_asset_materialize_lands_a_day(env):
    day = (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)).isoformat()
    with Sandbox(SandboxConfig()) as sandbox:
        log = _dagster("asset", "materialize", "-m", "fo_assets.definitions",
                        "--select", "fo/purchase_order_headers_v2", "--partition", day,
                        env={**env, **sandbox.env()})
    assert "RUN_SUCCESS" in log
    table = Path(env["FO_ASSETS_HOME"]) / "delta" / "purchase_order_headers_v2" / "_delta_log"
    assert table.is_dir(), sorted(p.name for p in (Path(env["FO_ASSETS_HOME"]) / "delta").iterdir())
    if "DAGSTER_HOME" in env:  # the run is in the instance the user pointed at
        assert list((Path(env["DAGSTER_HOME"]) / "history" / "runs").glob("*.db"))


def test_dagster_dev_serves_the_project(env, tmp_path):
    with serving([str(BIN / "dagster"), "dev", "--host", "127.0.0.1"], cwd=REPO, env=env,
                 log=tmp_path / "dagster-dev.log") as info:
        assert "dagster_webserver_version" in info


def test_fo_assets_dev_serves_the_location_of_the_project_workspace():
    """`fo-assets dev` writes the root workspace.yaml's location itself (an installed package has no
    project folder): the two must not drift apart. test_wheel runs it from an installed wheel."""
    assert yaml.safe_load(WORKSPACE) == yaml.safe_load((REPO / "workspace.yaml").read_text())
