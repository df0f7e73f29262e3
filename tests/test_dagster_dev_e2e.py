"""dagster dev end to end: sensors drive runs from dropped files; concurrent runs never hit the lock."""

import shutil
import time

import dagster as dg
import duckdb
import pytest
from dagster_graphql import DagsterGraphQLClient

from tests.conftest import DEMO_DIR
from tests.dagster_dev import dagster_dev, finished_runs, wait_until

pytestmark = pytest.mark.slow


def mart_days(data_dir):
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        return dict(
            con.execute("SELECT flight_date::VARCHAR, count(*) FROM marts.fct_flights GROUP BY 1").fetchall()
        )
    finally:
        con.close()


def all_runs_finished(instance, at_least: int):
    done, running = finished_runs(instance)
    return len(done) >= at_least and not running and done


def test_dropped_files_reach_the_marts_and_concurrent_runs_all_succeed(tmp_path):
    data = tmp_path / "data"
    landing = data / "landing" / "flights"
    landing.mkdir(parents=True)
    shutil.copy(DEMO_DIR / "reference.sqlite", data / "reference.sqlite")
    for day in ("01", "02"):
        shutil.copy(DEMO_DIR / "landing" / "flights" / f"2013-01-{day}.csv", landing)

    with dagster_dev(data, tmp_path / "dagster_home") as (base_url, instance):
        # The sensor bootstraps the reference data, then loads both days in one ranged run.
        runs = wait_until(lambda: all_runs_finished(instance, 2), timeout=420, interval=3, what="first runs")
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [
            (r.job_name, r.status) for r in runs
        ]
        assert set(mart_days(data)) == {"2013-01-01", "2013-01-02"}

        dropped = time.monotonic()
        tmp = landing / "2013-01-03.csv.part"
        shutil.copy(DEMO_DIR / "landing" / "flights" / "2013-01-03.csv", tmp)
        tmp.rename(landing / "2013-01-03.csv")  # the way writers publish a finished file
        wait_until(
            lambda: all_runs_finished(instance, 3), timeout=300, interval=2, what="the dropped file's run"
        )
        latency = time.monotonic() - dropped
        assert mart_days(data)["2013-01-03"] > 0
        print(f"file drop -> marts: {latency:.1f}s")

        # Many runs at once: the writer pool queues them, one DuckDB writer at a time; none fails.
        client = DagsterGraphQLClient("127.0.0.1", port_number=int(base_url.rsplit(":", 1)[1]))
        for day in ("2013-01-01", "2013-01-02", "2013-01-03"):
            client.submit_job_execution("flights_pipeline", tags={"dagster/partition": day})
        runs = wait_until(
            lambda: all_runs_finished(instance, 6), timeout=600, interval=3, what="concurrent runs"
        )
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * len(runs)
        before = mart_days(data)
        assert sorted(before) == ["2013-01-01", "2013-01-02", "2013-01-03"] and min(before.values()) > 0
