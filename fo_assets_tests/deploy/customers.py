"""Customer code locations as an operator sets them up, pointed at sandbox tenants instead of real ones.

A copy of a deploy/customers/<name> folder gets a fo-assets.env generated from what the sandbox prints,
without the client secret: that goes into the customer's own encrypted store through the real
``fo-assets secrets set`` command, exactly as the runbook says.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from fo_assets.sandbox import Sandbox
from fo_assets.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent
PARTITIONS_START = "2026-05-01"


@dataclass(frozen=True)
class Customer:
    name: str
    folder: Path  # the copy of deploy/customers/<name>
    home: Path  # its FO_ASSETS_HOME

    @property
    def definitions(self) -> Path:
        return self.folder / "definitions.py"

    @property
    def env_file(self) -> Path:
        return self.folder / "fo-assets.env"

    def config(self) -> dict[str, str]:
        """The location's settings exactly as its file gives them (for commands that read the environment)."""
        from fo_assets.settings import read_config_file

        return read_config_file(self.env_file)

    @property
    def pool(self) -> str:
        return load_settings(env={}, config_file=self.env_file).pool


def clean_env(**overrides: str) -> dict[str, str]:
    """The process environment without any fo-assets configuration, the venv's commands first on PATH, and
    the Dagster settings the image sets for every pod (deploy/Dockerfile's ENV)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FO_", "DATABRICKS_", "DAGSTER_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **image_dagster_env(), **overrides}


def image_dagster_env() -> dict[str, str]:
    """The ``DAGSTER_*`` variables deploy/Dockerfile sets with ENV, except DAGSTER_HOME (a path in the image)."""
    text = (REPO / "deploy" / "Dockerfile").read_text().replace("\\\n", " ")
    found = re.findall(r"\b(DAGSTER_[A-Z_]+)=(\S+)", "\n".join(line for line in text.splitlines()
                                                              if line.startswith("ENV ")))
    return {name: value for name, value in found if name != "DAGSTER_HOME"}


def run(command: list[str], env: dict[str, str], stdin: str | None = None, cwd: Path = REPO,
        timeout: float = 180) -> str:
    """Run a command as an operator would; its output (stdout, then stderr), or fail with it."""
    result = subprocess.run(command, env=env, input=stdin, capture_output=True, text=True, cwd=cwd, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result.stdout + result.stderr


def copy_customer(root: Path, name: str, sandbox: Sandbox) -> Customer:
    """deploy/customers/<name> copied under ``root``, its settings file pointed at the sandbox (no secret)."""
    folder = root / "customers" / name
    shutil.copytree(DEPLOY / "customers" / name, folder)
    home = root / f"{name}-home"
    settings = {k: v for k, v in sandbox.env().items() if k != "FO_CLIENT_SECRET"}
    settings.update(FO_ASSETS_HOME=str(home), FO_PARTITIONS_START=PARTITIONS_START, FO_ASSET_KEY_PREFIX=name,
                    FO_REQUEST_TIMEOUT="10", FO_WARMUP_TIMEOUT="30")
    lines = [f"# {name}, pointed at a sandbox tenant (written by the deploy tests)"]
    (folder / "fo-assets.env").write_text("\n".join(lines + [f"{k}={v}" for k, v in settings.items()]) + "\n")
    return Customer(name, folder, home)


def set_up_customer(root: Path, name: str, sandbox: Sandbox, master_key: str) -> Customer:
    """A customer copy whose client secret is in its own encrypted store, put there by the real command."""
    customer = copy_customer(root, name, sandbox)
    run([str(BIN / "fo-assets"), "secrets", "set", "FO_CLIENT_SECRET"],
        clean_env(FO_ASSETS_HOME=str(customer.home), FO_ASSETS_MASTER_KEY=master_key),
        stdin=sandbox.cfg.client_secret + "\n")
    return customer


def write_workspace(root: Path, customers: list[Customer]) -> Path:
    """A workspace file like deploy/workspace.yaml, over the customer copies."""
    entries = "".join(
        f"  - python_file:\n      relative_path: {c.definitions.relative_to(root)}\n      location_name: {c.name}\n"
        for c in customers
    )
    path = root / "workspace.yaml"
    path.write_text("load_from:\n" + entries)
    return path


def dagster_home(root: Path, name: str) -> Path:
    """A fresh DAGSTER_HOME holding only the production instance file, as a new pod has."""
    home = root / name
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    return home
