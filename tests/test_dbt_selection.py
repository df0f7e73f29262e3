"""Dagster's dbt assets and what `dbt build` builds are the same nodes.

daily_dbt_models selects every node of the manifest and passes dbt no selection (assets/dbt_models.py):
dagster-dbt makes every non-ephemeral model an asset and every test a check, while dbt builds its default
selector (dbt_project/selectors.yml). A model or test outside that selector would be an asset or check
that no run ever materializes or evaluates; this asks dbt itself, through `dbt ls`.
"""

import json
import subprocess
import sys
from pathlib import Path

from assets.dbt_models import DBT_MANIFEST, daily_dbt_models
from resources import settings


def test_the_dbt_assets_are_the_nodes_dbt_builds_by_default(tmp_path):
    listed = subprocess.run(
        [
            str(Path(sys.executable).with_name("dbt")),
            "ls",
            "--profiles-dir",
            ".",
            "--target-path",
            str(tmp_path / "target"),
            "--output",
            "json",
            "--output-keys",
            "unique_id",
            "--quiet",
        ],
        cwd=settings.DBT_PROJECT_DIR,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    built_by_default = {json.loads(line)["unique_id"] for line in listed}
    nodes = json.loads(DBT_MANIFEST.read_text())["nodes"]

    def names(resource_type: str, ids) -> set[str]:
        return {nodes[uid]["name"] for uid in ids if nodes[uid]["resource_type"] == resource_type}

    assert {key.path[-1] for key in daily_dbt_models.keys} == names("model", built_by_default)
    # Every test dbt builds is a check, or an observation when it tests no single model (a singular test
    # over two marts); and dbt builds every test of the manifest.
    checks = {key.name for key in daily_dbt_models.check_keys}
    assert checks <= names("test", built_by_default)
    assert names("test", built_by_default) == names("test", nodes)
    assert {key.path[-1] for key in daily_dbt_models.keys} == {
        node["name"]
        for node in nodes.values()
        if node["resource_type"] == "model" and node["config"]["materialized"] != "ephemeral"
    }
