"""A daemon killed and restarted while the landing sensor has a cursor and a backfill is running, on the
production set-up: nothing is processed twice, nothing is skipped (issue: production)."""

import os
import signal

import dagster as dg
import duckdb
import pytest

from tests.conftest import DEMO_DIR
from tests.dagster_dev import launch_backfill, wait_until
from tests.postgres import requires_postgres
from tests.production_stack import prepare_data, production_stack

pytestmark = [requires_postgres, pytest.mark.postgres, pytest.mark.slow]
FLIGHTS_PIPELINE = [["raw", "flights"], ["staging", "stg_flights"], ["marts", "fct_flights"]]
FIRST = ["2013-01-01", "2013-01-02", "2013-01-03"]  # delivered before the restart, then backfilled
LATER = ["2013-01-04", "2013-01-05"]  # delivered around the restart


def test_daemon_restart_during_a_backfill_with_a_sensor_cursor(tmp_path, monkeypatch):
    data = tmp_path / "data"
    prepare_data(data, FIRST)
    with (
        production_stack(tmp_path, monkeypatch) as stack,
        dg.DagsterInstance.from_config(str(stack.home)) as instance,
    ):
        raw = dg.AssetKey(["raw", "flights"])
        wait_until(
            lambda: (
                len(instance.get_materialized_partitions(raw)) == len(FIRST)
                and all(r.is_finished for r in instance.get_runs())
            ),
            timeout=400,
            interval=2,
            what="the sensor's first load",
        )
        backfill_id = launch_backfill(
            stack.web_url, FIRST, FLIGHTS_PIPELINE
        )  # e.g. reprocessing after a logic change

        def backfill_run_started():
            runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
            return runs and runs[0].status == dg.DagsterRunStatus.STARTED

        wait_until(backfill_run_started, timeout=300, interval=1, what="the backfill's run to start")
        landing = data / "landing" / "flights"
        for day in LATER:  # new files arrive as the daemon goes down
            part = landing / f"{day}.csv.part"
            part.write_bytes((DEMO_DIR / "landing" / "flights" / f"{day}.csv").read_bytes())
            part.rename(landing / f"{day}.csv")
        os.killpg(stack.daemon.pid, signal.SIGKILL)  # no clean shutdown: as a crashed host would
        stack.daemon.wait(timeout=30)
        stack.start_daemon()

        def settled():
            backfill = instance.get_backfill(backfill_id)
            runs = instance.get_runs()
            return (
                backfill.status.value.startswith("COMPLETED")
                and len(instance.get_materialized_partitions(raw)) == len(FIRST + LATER)
                and all(r.is_finished for r in runs)
            )

        wait_until(settled, timeout=600, interval=3, what="the backfill and the new files after the restart")
        assert instance.get_backfill(backfill_id).status.value == "COMPLETED_SUCCESS"
        backfill_runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        errors = [
            e.dagster_event.step_failure_data.error.message[:600]
            for r in backfill_runs
            if r.status == dg.DagsterRunStatus.FAILURE
            for e in instance.all_logs(r.run_id)
            if e.dagster_event and e.dagster_event.is_step_failure
        ]
        assert len(backfill_runs) == 1 and backfill_runs[0].status == dg.DagsterRunStatus.SUCCESS, errors
        sensor_runs = instance.get_runs(dg.RunsFilter(tags={"flightdeck/trigger": "landing_file"}))
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in sensor_runs)
        assert stack.daemons_started == 2

    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        loads = dict(
            con.execute(
                "SELECT strftime(partition_date, '%Y-%m-%d'), count(*) FROM ops.load_audit GROUP BY 1"
            ).fetchall()
        )
        # The first days: loaded by the sensor, then once by the backfill. The later days: once, by the
        # sensor, although the daemon died around their arrival. Nothing twice, nothing skipped.
        assert loads == {**{day: 2 for day in FIRST}, **{day: 1 for day in LATER}}
        marts = con.execute(
            "SELECT count(DISTINCT flight_date), count(*) = count(DISTINCT flight_id) FROM marts.fct_flights"
        ).fetchone()
        assert marts == (len(FIRST + LATER), True)
    finally:
        con.close()
