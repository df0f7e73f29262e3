"""Runs launched by schedules, from the daemon's own schedule loop, under `dg dev`, which the README shows
beside `dagster dev` (its webserver, daemon and code location), on the DuckLake warehouse: a failed
run raises exactly one alert, recorded in the lake's alert log, and the lake's nightly maintenance runs
at its set time."""

import json
import shutil
import urllib.request
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from flightdeck import lake, settings
from tests.conftest import DEMO_DIR
from tests.dagster_dev import dagster_dev, free_port, wait_until
from tests.postgres import requires_postgres
from tests.test_alert_launch_paths import failure_alerts


@pytest.mark.slow
@requires_postgres
def test_scheduled_runs_on_the_lake_a_failed_one_alerts_once_and_the_maintenance_runs(tmp_path, catalog):
    """weather_daily is set to pull a minute or two from now, over partitions that include yesterday, from
    an API where nothing listens; lake_maintenance_nightly is set to the same minute."""
    data = tmp_path / "data"
    (data / "landing" / "flights").mkdir(parents=True)
    shutil.copy(DEMO_DIR / "reference.sqlite", data / "reference.sqlite")
    now = datetime.now(UTC)
    tick = (now + timedelta(seconds=150)).replace(second=0, microsecond=0)  # after dg dev is up
    yesterday = (tick - timedelta(days=1)).date()
    settings_ = {
        "FLIGHTDECK_PARTITION_START": (yesterday - timedelta(days=2)).isoformat(),
        "FLIGHTDECK_PARTITION_END": (tick + timedelta(days=1)).date().isoformat(),
        "FLIGHTDECK_WEATHER_PULL_TIME": tick.strftime("%H:%M"),
        "FLIGHTDECK_WEATHER_API_URL": f"http://127.0.0.1:{free_port()}",
        "FLIGHTDECK_WEATHER_MAX_ATTEMPTS": "1",
        "FLIGHTDECK_WAREHOUSE": "ducklake",
        "FLIGHTDECK_DUCKLAKE_CATALOG": catalog,
        "FLIGHTDECK_DUCKLAKE_DATA_PATH": str(data / "lake"),
        "FLIGHTDECK_DUCKLAKE_MAINTENANCE_TIME": tick.astimezone(ZoneInfo("America/New_York")).strftime(
            "%H:%M"
        ),
    }

    def lake_alerts():
        return failure_alerts(
            data,
            lambda: lake.connect(
                catalog, str(data / "lake"), settings.duckdb_extension_dir(), read_only=True
            ),
        )

    with dagster_dev(data, tmp_path / "dagster_home", extra_env=settings_, command="dg") as (url, instance):
        assert {"flights_landing_sensor", "weather_daily", "lake_maintenance_nightly"} <= automation_names(
            url
        )

        def scheduled_runs_finished():
            runs = {
                name: instance.get_runs(dg.RunsFilter(tags={"dagster/schedule_name": name}))
                for name in ("weather_daily", "lake_maintenance_nightly")
            }
            return runs if all(r and all(run.is_finished for run in r) for r in runs.values()) else None

        runs = wait_until(scheduled_runs_finished, timeout=420, interval=2, what="the schedules' runs")
        [weather], [maintenance] = runs["weather_daily"], runs["lake_maintenance_nightly"]
        assert weather.status == dg.DagsterRunStatus.FAILURE
        assert weather.tags["dagster/partition"] == yesterday.isoformat()
        assert maintenance.status == dg.DagsterRunStatus.SUCCESS
        alerts = wait_until(
            lambda: (a := lake_alerts()) and weather.run_id in a and a,
            timeout=180, interval=2, what="the schedule run's alert",
        )  # fmt: skip
        [output] = instance.all_logs(maintenance.run_id, of_type=dg.DagsterEventType.STEP_OUTPUT)
    assert list(alerts) == [weather.run_id]
    assert alerts[weather.run_id]["job"] == "weather_pipeline"
    metadata = output.dagster_event.event_specific_data.metadata
    assert "skipped" not in metadata and metadata["retention_days"].value == 7  # it maintained the lake
    assert not (data / "warehouse.duckdb").exists()  # everything on the lake, nothing on the file


def automation_names(url: str) -> set[str]:
    """The sensors and schedules the webserver's code location serves, as the UI's Automation page."""
    query = "{ repositoriesOrError { ... on RepositoryConnection { nodes { sensors { name } schedules { name } } } } }"
    request = urllib.request.Request(
        f"{url}/graphql", json.dumps({"query": query}).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        nodes = json.load(response)["data"]["repositoriesOrError"]["nodes"]
    return {a["name"] for node in nodes for a in node["sensors"] + node["schedules"]}
