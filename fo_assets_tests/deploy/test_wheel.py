"""The package as users install it: a wheel built from the repository, installed (not editable) into a
fresh virtual environment, runs `fo-assets demo` to completion from an empty folder.

The editable install every other test uses reads the model SQL and the sandbox's tenant data from the
source tree, so it cannot see a file missing from the wheel; this test can. The fresh environment gets the
dependencies by pointing at the test environment's site-packages (a .pth file), so nothing is downloaded;
.pth lines are not processed recursively, so the editable fo_assets installed there stays invisible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from fo_assets_tests.deploy.customers import REPO
from fo_assets_tests.deploy.serving import serving

pytestmark = pytest.mark.slow


def _run(command: list[str | Path], cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _tracked(*paths: str) -> list[str]:
    """The repository's files as a fresh clone has them (plus new ones not yet committed)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", *paths], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split()
    return [name for name in listed if (REPO / name).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Built from a copy of the checkout: what is on disk but not in git cannot slip in, and the build
    # leaves nothing in the working tree. pip builds in its isolated environment (the backend from the registry).
    source = tmp_path_factory.mktemp("source")
    for name in _tracked():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", out, source], cwd=out)
    (built,) = out.glob("fo_assets-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed; returns its bin folder."""
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=venv)
    python = venv / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=venv).stdout
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib.strip()) / "fo_assets_dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel], cwd=venv)
    return venv / "bin"


def test_the_wheel_ships_every_file_the_package_reads_at_run_time(wheel):
    data = {name for name in _tracked("fo_assets") if not name.endswith(".py")}
    assert {"fo_assets/model_sql/trial_balance.sql", "fo_assets/model_sql/databricks.yml",
            "fo_assets/sandbox/real_tenant/entities.json"} <= data
    shipped = set(zipfile.ZipFile(wheel).namelist())
    assert data - shipped == set(), "package-data in pyproject.toml misses these"
    assert not any(name.startswith("fo_assets_tests/") for name in shipped)


def _user_env(tmp_path: Path) -> dict[str, str]:
    """A user's shell after the README's set-up: a home for fo-assets and one for Dagster, nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FO_", "DATABRICKS_", "DAGSTER_"))}
    env.update(FO_ASSETS_HOME=str(tmp_path / "home"), DAGSTER_HOME=str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    return env


def test_fo_assets_demo_runs_from_the_installed_wheel_in_an_empty_folder(installed, tmp_path):
    empty = tmp_path / "anywhere"
    empty.mkdir()
    env = _user_env(tmp_path)
    where = _run([installed / "python", "-c", "import fo_assets; print(fo_assets.__file__)"], cwd=empty, env=env)
    assert Path(where.stdout.strip()).is_relative_to(installed.parent), where.stdout

    done = _run([installed / "fo-assets", "demo"], cwd=empty, env=env, timeout=540)
    # The model step read its SQL from the installed package and built the table.
    assert "fo_model/trial_balance" in done.stdout, done.stdout[-3000:]
    assert (tmp_path / "home" / "delta" / "model" / "trial_balance" / "_delta_log").is_dir()
    assert list(empty.iterdir()) == [], "the demo wrote into the working folder"


def test_fo_assets_dev_serves_the_code_location_from_the_installed_wheel(installed, tmp_path):
    empty = tmp_path / "anywhere"
    empty.mkdir()
    with serving([str(installed / "fo-assets"), "dev"], cwd=empty, env=_user_env(tmp_path),
                 log=tmp_path / "fo-assets-dev.log") as info:
        assert "dagster_webserver_version" in info
