"""A run's launch configuration cannot swap what flightdeck executes: the dbt executable, its flags and
project, and the warehouse path are fixed by the deployment; a launchpad override fails the run."""

import shutil

import pytest

from definitions import defs
from resources.dbt import pinned_dbt_config
from tests.conftest import ROOT
from tests.runs import failure_messages, load_reference


@pytest.mark.parametrize(
    ("resource", "config", "expected"),
    [
        ("dbt", {"dbt_executable": "/bin/sh"}, "'dbt_executable'"),
        ("dbt", {"global_config_flags": ["-c", "touch /tmp/pwned"]}, "'global_config_flags'"),
        ("dbt", {"project_dir": "a copy"}, "'project_dir'"),
        ("warehouse", {"path": "/tmp/elsewhere.duckdb"}, "the warehouse path cannot be set"),
    ],
    ids=["dbt_executable", "global_flags", "project_dir", "warehouse_path"],
)
def test_a_launchpad_override_of_what_runs_fails_the_run(env, instance, tmp_path, resource, config, expected):
    load_reference(instance)
    marker = tmp_path / "ran"
    if resource == "dbt" and "dbt_executable" in config:
        script = tmp_path / "evil.sh"
        script.write_text(f"#!/bin/sh\ntouch {marker}\n")
        script.chmod(0o755)
        config = {"dbt_executable": str(script)}
    if config.get("project_dir") == "a copy":  # another, valid dbt project
        copy = tmp_path / "other_project"
        shutil.copytree(ROOT / "dbt_project", copy, ignore=shutil.ignore_patterns("target", "logs"))
        config = {"project_dir": str(copy)}
    if resource == "dbt":  # a launchpad gives the resource's whole config, the one change among it
        config = {**{k: v for k, v in pinned_dbt_config().items() if v is not None}, **config}
    job = defs.resolve_job_def("flights_pipeline")
    result = job.execute_in_process(
        instance=instance,
        partition_key="2013-01-02",
        run_config={"resources": {resource: {"config": config}}},
        raise_on_error=False,
    )
    assert not result.success
    message = failure_messages(result)
    assert expected in message and "cannot be set in a run's configuration" in message
    assert not marker.exists()
