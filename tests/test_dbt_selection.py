"""Dagster's daily dbt assets are exactly the project's models that dbt builds, and all follow the days.

daily_dbt_models selects the whole dbt project (dagster-dbt's default selection, assets/dbt_models.py),
so that no dbt-core is needed in Dagster's processes to evaluate a narrower one. That is right only while
every model dbt builds (the ephemeral ones are inlined, not built) follows the daily partitions; a model
added without the `daily` tag would be materialized by every daily run under the partition's name.
"""

import json

from assets.dbt_models import DBT_MANIFEST, daily_dbt_models
from tests.conftest import printed_by_fresh_python


def test_every_model_dbt_builds_is_a_daily_asset_and_every_test_runs_with_it():
    nodes = json.loads(DBT_MANIFEST.read_text())["nodes"].values()
    built = {
        n["name"]
        for n in nodes
        if n["resource_type"] == "model" and n["config"]["materialized"] != "ephemeral"
    }
    tests = {n["name"] for n in nodes if n["resource_type"] == "test"}

    assert {key.path[-1] for key in daily_dbt_models.keys} == built
    assert all("daily" in n["tags"] for n in nodes if n["name"] in built and n["resource_type"] == "model")
    # Each test is a check on the model it tests (the singular test over two marts names it in its
    # meta), so none is logged as a bare observation with a warning in every run's log.
    assert {key.name for key in daily_dbt_models.check_keys} == tests


def test_the_assets_are_the_same_whether_or_not_dbt_core_was_imported_first():
    """With dagster-dbt imported before flightdeck's definitions (and so with dbt-core, as a plugin or a
    user's module might do), the selection is evaluated by dbt-core instead, to the same assets."""
    probe = (
        "import dagster_dbt, definitions; from assets.dbt_models import daily_dbt_models as d; "
        "print(sorted(k.to_user_string() for k in d.keys), len(d.check_keys))"
    )
    assert (
        printed_by_fresh_python(probe)
        == f"{sorted(k.to_user_string() for k in daily_dbt_models.keys)} {len(daily_dbt_models.check_keys)}"
    )
