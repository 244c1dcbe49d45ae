"""The one private Dagster API fo-assets relies on, pinned: an upgrade that moves or changes it fails here
first, with the reason, instead of silently leaving every day's checks unattached in the UI."""

import inspect

import dagster as dg


def test_the_private_import_is_where_checks_py_takes_it_from_with_the_fields_it_fills():
    from fo_assets import checks

    target = checks.TargetMaterialization
    assert target.__module__ == "dagster._core.definitions.asset_checks.asset_check_evaluation"
    made = target(run_id="r-1", storage_id=7, timestamp=1.5)  # as checks.py makes it
    assert (made.run_id, made.storage_id, made.timestamp) == ("r-1", 7, 1.5)
    # AssetCheckEvaluation takes it (and a partition), which is how a day's check names the day's data.
    parameters = inspect.signature(dg.AssetCheckEvaluation).parameters
    assert {"target_materialization_data", "partition", "blocking"} <= set(parameters)


def test_dagster_is_the_release_the_project_pins():
    # The private import above and the preview APIs (partitioned asset checks, source code references)
    # are only known to work on this release: changing the pin means re-reading them.
    assert dg.__version__ == "1.13.27"
