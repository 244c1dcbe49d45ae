"""The code location loads with nothing configured, as `dagster definitions validate` sees it."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_definitions_validate_with_no_configuration(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FO_", "DATABRICKS_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(tmp_path), HOME=str(tmp_path))
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    done = subprocess.run([sys.executable, "-m", "dagster", "definitions", "validate", "-w", str(ROOT / "workspace.yaml")],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Validation successful for code location fo_assets" in done.stderr + done.stdout


def test_a_run_on_local_delta_does_not_import_the_databricks_sdk(tmp_path):
    # databricks-sdk costs a run a second and a half of start-up; only a Databricks sink needs it.
    script = ("import sys; from fo_assets.resources import build_ledger, build_sink; "
              "from fo_assets.settings import load_settings; s = load_settings(); "
              "ledger = build_ledger(s, build_sink(s)); assert ledger.archive is None; "
              "print(sorted(m for m in sys.modules if m.startswith('databricks')))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FO_", "DATABRICKS_"))}
    done = subprocess.run([sys.executable, "-c", script], env={**env, "FO_ASSETS_HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
