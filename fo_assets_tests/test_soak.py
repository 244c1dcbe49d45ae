"""The soak (``python -m soak``) stays runnable: a short one, as its own process, ends with its verdict.

The soak is the long reliability measurement (README, "Soak"); this keeps it from rotting between the
times someone runs it for 30 minutes. Its verdict is its own: every run succeeded, every event-named
record is current, and every table equals the tenant exactly after the reconciliation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_a_short_soak_ends_exact_with_no_failed_run(tmp_path: Path) -> None:
    report = tmp_path / "soak.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FO_", "DATABRICKS_", "DAGSTER_"))}
    done = subprocess.run(
        [sys.executable, "-m", "soak", "--minutes", "0.2", "--tick-seconds", "3", "--daily-every", "2",
         "--scale", "0.05", "--report", str(report)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    verdict = json.loads(report.read_text())
    assert verdict["ok"] and verdict["runs"]["failed"] == 0 and verdict["runs"]["succeeded"] >= 3
    assert verdict["events_posted"] > 0 and verdict["event_named_records_not_current"] == []
    assert all(state.startswith("exact") for state in verdict["tables"].values()), verdict["tables"]
