"""The asset graph of each code location is pinned in fo_assets_tests/golden/<location>.json.

Dagster keys a table's history (materializations, check results, partitions, schedules' ticks) by name: a
renamed asset key, check, job, schedule or sensor starts empty and orphans the old history. So any change
to these names, the groups, the partitions, the check severities or the schedules' crons fails here until
the golden file is regenerated on purpose:

    FO_GOLDEN_UPDATE=1 .venv/bin/python -m pytest fo_assets_tests/test_golden_graph.py

and the diff of the golden file is reviewed with the change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from fo_assets.checks import SEVERITIES
from fo_assets.definitions import build_definitions

REPO = Path(__file__).resolve().parent.parent
# Read at import: the test clears every FO_ variable before it builds the definitions.
UPDATE = os.environ.get("FO_GOLDEN_UPDATE") == "1"
GOLDEN = Path(__file__).resolve().parent / "golden"
# Each code location as its workspace loads it: the demo's root workspace and the production customers.
LOCATIONS = {
    "fo_assets": None,
    **{p.name: p / "fo-assets.env" for p in sorted((REPO / "deploy" / "customers").iterdir())
       if (p / "definitions.py").exists()},
}


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> str | None:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return (f"{type(partitions_def).__name__}(start={partitions_def.start:%Y-%m-%d}, "
                f"cron={partitions_def.cron_schedule!r}, timezone={partitions_def.timezone}, "
                f"end_offset={partitions_def.end_offset})")
    return repr(partitions_def)


def graph(defs: dg.Definitions) -> dict[str, Any]:
    """What Dagster keys history by, and what changes what runs when, in a stable order."""
    asset_graph = defs.resolve_asset_graph()
    repository = defs.get_repository_def()
    assets = {}
    for key in sorted(asset_graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = asset_graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": _partitions(node.partitions_def),
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
        }
    checks = {}
    for check_key in sorted(asset_graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        spec = asset_graph.get_check_spec(check_key)
        checks[f"{check_key.asset_key.to_user_string()}:{check_key.name}"] = {
            "blocking": spec.blocking,
            "severity": SEVERITIES[check_key.name].value,
            "partitioned": spec.partitions_def is not None,
        }
    jobs = {}
    for job in sorted(repository.get_all_jobs(), key=lambda j: j.name):
        if job.name.startswith("__"):  # Dagster's implicit asset job
            continue
        jobs[job.name] = {"partitions": _partitions(job.partitions_def)}
    schedules = {
        s.name: {"cron": s.cron_schedule, "timezone": s.execution_timezone, "job": s.job_name,
                 "default_status": s.default_status.value}
        for s in sorted(repository.schedule_defs, key=lambda s: s.name)
    }
    sensors = {
        s.name: {"type": s.sensor_type.value, "default_status": s.default_status.value}
        for s in sorted(repository.sensor_defs, key=lambda s: s.name)
    }
    return {"assets": assets, "checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors}


@pytest.fixture
def clean_environment(monkeypatch):
    """The code location as its own configuration (or none) shapes it, whatever this shell exports."""
    for name in list(os.environ):
        if name.startswith(("FO_", "DATABRICKS_")):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("location", sorted(LOCATIONS))
def test_the_asset_graph_matches_its_golden_file(location, clean_environment):
    config_file = LOCATIONS[location]
    actual = graph(build_definitions(str(config_file) if config_file else None))
    golden = GOLDEN / f"{location}.json"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
    assert golden.exists(), f"no golden file for {location}: run with FO_GOLDEN_UPDATE=1 (see this module)"
    expected = json.loads(golden.read_text())
    for section in expected:
        assert actual[section] == expected[section], (
            f"{location}: the {section} changed; if on purpose, regenerate {golden.relative_to(REPO)} "
            "with FO_GOLDEN_UPDATE=1 and review its diff")
    assert set(actual) == set(expected)
