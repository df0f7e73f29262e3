"""A failed run launched by a schedule, from the daemon's own schedule loop, raises exactly one alert; under
`dg dev`, which the README shows beside `dagster dev` (its webserver, daemon and code location)."""

import json
import shutil
import urllib.request
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from tests.conftest import DEMO_DIR
from tests.dagster_dev import dagster_dev, free_port, wait_until
from tests.test_alert_launch_paths import failure_alerts


@pytest.mark.slow
def test_a_failed_run_launched_by_a_schedule_alerts_once(tmp_path):
    """The daemon's own schedule loop launches the run: weather_daily is set to pull a minute or two
    from now, over partitions that include yesterday, from an API where nothing listens."""
    data = tmp_path / "data"
    (data / "landing" / "flights").mkdir(parents=True)
    shutil.copy(DEMO_DIR / "reference.sqlite", data / "reference.sqlite")
    now = datetime.now(UTC)
    tick = (now + timedelta(seconds=150)).replace(second=0, microsecond=0)  # after dagster dev is up
    yesterday = (tick - timedelta(days=1)).date()
    settings = {
        "FLIGHTDECK_PARTITION_START": (yesterday - timedelta(days=2)).isoformat(),
        "FLIGHTDECK_PARTITION_END": (tick + timedelta(days=1)).date().isoformat(),
        "FLIGHTDECK_WEATHER_PULL_TIME": tick.strftime("%H:%M"),
        "FLIGHTDECK_WEATHER_API_URL": f"http://127.0.0.1:{free_port()}",
        "FLIGHTDECK_WEATHER_MAX_ATTEMPTS": "1",
    }
    with dagster_dev(data, tmp_path / "dagster_home", extra_env=settings, command="dg") as (url, instance):
        assert {"flights_landing_sensor", "weather_daily"} <= automation_names(url)

        def scheduled_failure():
            runs = instance.get_runs(dg.RunsFilter(tags={"dagster/schedule_name": "weather_daily"}))
            return runs if runs and all(r.status == dg.DagsterRunStatus.FAILURE for r in runs) else None

        [run] = wait_until(scheduled_failure, timeout=420, interval=2, what="the schedule's failed run")
        assert run.tags["dagster/partition"] == yesterday.isoformat()
        alerts = wait_until(
            lambda: (a := failure_alerts(data)) and run.run_id in a and a,
            timeout=180, interval=2, what="the schedule run's alert",
        )  # fmt: skip
    assert list(alerts) == [run.run_id]
    assert alerts[run.run_id]["job"] == "weather_pipeline"


def automation_names(url: str) -> set[str]:
    """The sensors and schedules the webserver's code location serves, as the UI's Automation page."""
    query = "{ repositoriesOrError { ... on RepositoryConnection { nodes { sensors { name } schedules { name } } } } }"
    request = urllib.request.Request(
        f"{url}/graphql", json.dumps({"query": query}).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        nodes = json.load(response)["data"]["repositoriesOrError"]["nodes"]
    return {a["name"] for node in nodes for a in node["sensors"] + node["schedules"]}
