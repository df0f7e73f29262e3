"""Every failed run of flightdeck's assets and jobs raises exactly one alert, however it was launched:
`dagster asset materialize` and `dg launch` (runs with no code location), and a run of a second code
server of the same project, while `dagster dev` runs; a run of another project on the same instance
raises none."""

import json
import shutil
import subprocess
import time

import dagster as dg
import duckdb
import pytest
import yaml

from sensors.alert_sensors import is_flightdeck_run
from tests.conftest import DEMO_DIR, ROOT
from tests.dagster_dev import BIN, dagster_dev, flightdeck_env, wait_until


def failure_alerts(data, connect=None) -> dict[str, dict] | None:
    """The run-failure alerts of the warehouse file in `data` (or of what `connect()` opens), by run."""
    try:
        con = connect() if connect else duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    except duckdb.Error:  # a run or sensor is writing (the file), or nothing is written yet; look again
        return None
    try:
        rows = con.execute("SELECT details FROM ops.alerts WHERE kind = 'run_failure'").fetchall()
    except duckdb.CatalogException:
        return None
    finally:
        con.close()
    alerts = [json.loads(details) for (details,) in rows]
    return (
        {alert["run_id"]: alert for alert in alerts}
        if len(alerts) == len({a["run_id"] for a in alerts})
        else {"duplicate alerts": alerts}
    )


@pytest.mark.slow
def test_failed_runs_from_the_cli_dg_and_a_second_code_server_alert_once_each(tmp_path):
    data = tmp_path / "data"
    (data / "landing" / "flights").mkdir(parents=True)  # no files: the runs below fail for lack of one
    shutil.copy(DEMO_DIR / "reference.sqlite", data / "reference.sqlite")
    workspace = tmp_path / "workspace.yaml"
    location = {"relative_path": str(ROOT / "definitions.py"), "working_directory": str(ROOT)}
    workspace.write_text(yaml.safe_dump({"load_from": [
        {"python_file": {**location, "location_name": "flightdeck"}},
        {"python_file": {**location, "location_name": "flightdeck_second"}},
    ]}))  # fmt: skip
    home = tmp_path / "dagster_home"
    env = flightdeck_env(data, home)

    def cli(*args):
        return subprocess.run(
            [str(BIN / args[0]), *args[1:]], cwd=ROOT, env=env, capture_output=True, text=True
        )

    with dagster_dev(data, home, workspace=workspace) as (_, instance):
        launched = [
            cli("dagster", "asset", "materialize", "-f", "definitions.py", "--select", "raw/flights",
                "--partition", "2013-01-03"),
            cli("dg", "launch", "--assets", "raw/flights", "--partition-range", "2013-01-04...2013-01-05"),
            cli("dagster", "job", "launch", "-w", str(workspace), "-l", "flightdeck_second",
                "-j", "flights_pipeline", "--tags", json.dumps({"dagster/partition": "2013-01-06"})),
        ]  # fmt: skip
        assert [done.returncode for done in launched] == [1, 1, 0], [d.stderr[-2000:] for d in launched]

        def all_failed():
            runs = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
            return runs if len(runs) == 3 else None

        runs = wait_until(all_failed, timeout=300, interval=2, what="three failed runs")
        expected = {run.run_id for run in runs}
        alerts = wait_until(
            lambda: (a := failure_alerts(data)) and set(a) >= expected and a,
            timeout=180, interval=2, what="an alert for each failed run",
        )  # fmt: skip
        # Both code locations' sensors watch every run: once each has ticked again, still one alert a run.
        since = time.time()
        wait_until(
            lambda: all(
                ticks and ticks[0].timestamp > since
                for ticks in (instance.get_ticks(o, s, limit=1) for o, s in _failure_sensor_ids(instance))
            ),
            timeout=120, interval=2, what="both sensors to tick again",
        )  # fmt: skip
        sensor_ticks = failure_alerts(data)
        assert set(sensor_ticks) == expected
    by_partition = {alert["partition"]: alert for alert in alerts.values()}
    assert sorted(by_partition) == ["2013-01-03", "2013-01-04...2013-01-05", "2013-01-06"]
    assert "no landing file for partition 2013-01-03" in by_partition["2013-01-03"]["error"]
    assert "could be loaded" in by_partition["2013-01-04...2013-01-05"]["error"]
    assert by_partition["2013-01-06"]["job"] == "flights_pipeline"


def _failure_sensor_ids(instance):
    states = [s for s in instance.all_instigator_state() if s.name == "run_failure_alert_sensor"]
    assert len(states) == 2, states  # one per code location
    return [(state.instigator_origin_id, state.selector_id) for state in states]


def test_runs_of_another_project_on_the_same_instance_are_not_flightdecks():
    from definitions import defs

    repository = defs.get_repository_def()

    def run(job_name, assets=None):
        return dg.DagsterRun(job_name=job_name, asset_selection=assets)

    assert is_flightdeck_run(run("flights_pipeline"), repository)
    assert is_flightdeck_run(run("__ASSET_JOB", {dg.AssetKey(["raw", "flights"])}), repository)
    assert not is_flightdeck_run(run("__ASSET_JOB", {dg.AssetKey(["their", "table"])}), repository)
    assert not is_flightdeck_run(run("their_job"), repository)
    assert not is_flightdeck_run(run("__ASSET_JOB"), repository)
