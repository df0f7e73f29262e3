"""kill -9 of a run's worker in the middle of its write, on the production set-up (PostgreSQL instance,
code server + webserver + daemon as separate processes): detected, failed, retried, exact rows; with the
warehouse on the DuckDB file and on a DuckLake (its catalog a scratch PostgreSQL database)."""

import contextlib
import os
import signal
import time

import dagster as dg
import duckdb
import pytest

from flightdeck import lake, settings
from resources.warehouse import WRITER_POOL
from tests.conftest import DEMO_DIR
from tests.dagster_dev import wait_until
from tests.postgres import PG_HOST, PG_PORT, PG_USER, requires_postgres, scratch_database
from tests.production_stack import prepare_data, production_stack

pytestmark = [requires_postgres, pytest.mark.postgres, pytest.mark.slow]
DAY = "2013-01-05"
SECOND_DAY = "2013-01-06"
second_day_lines = (DEMO_DIR / "landing" / "flights" / f"{SECOND_DAY}.csv").read_text().splitlines()


def day_runs(instance: dg.DagsterInstance, day: str) -> list[dg.DagsterRun]:
    return instance.get_runs(dg.RunsFilter(job_name="flights_pipeline", tags={"dagster/partition": day}))


def second_day_waits_or_starts(instance: dg.DagsterInstance, data, warehouse: str) -> None:
    """A second day lands while the first day's run is held in its commit: on the DuckDB file its run
    waits in the queue (one writer run at a time); on the lake it starts at once, the writer pool
    admitting FLIGHTDECK_WAREHOUSE_WRITERS runs (sensors/writer_pool_sensor.py sets it from that setting)."""
    wanted = 4 if warehouse == "ducklake" else 1
    wait_until(
        lambda: instance.event_log_storage.get_concurrency_info(WRITER_POOL).slot_count == wanted,
        timeout=120, interval=1, what=f"the writer pool at {wanted}",
    )  # fmt: skip
    landing = data / "landing" / "flights"
    (landing / f"{SECOND_DAY}.csv.part").write_text("\n".join(second_day_lines) + "\n")
    (landing / f"{SECOND_DAY}.csv.part").rename(landing / f"{SECOND_DAY}.csv")
    [run] = wait_until(lambda: day_runs(instance, SECOND_DAY), timeout=120, interval=1, what="its run")
    if warehouse == "ducklake":
        wait_until(
            lambda: instance.get_run_by_id(run.run_id).status != dg.DagsterRunStatus.QUEUED,
            timeout=60, interval=0.5, what="the second day's run to leave the queue",
        )  # fmt: skip
    else:
        time.sleep(5)  # the queue is looked at every second: five chances to start it
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.QUEUED


@pytest.mark.parametrize("warehouse", ["duckdb", "ducklake"])
def test_run_killed_mid_write_is_failed_retried_and_leaves_exact_rows(tmp_path, monkeypatch, warehouse):
    data = tmp_path / "data"
    prepare_data(data, [DAY])
    expected_rows = len((data / "landing" / "flights" / f"{DAY}.csv").read_text().splitlines()) - 1
    marker = tmp_path / "crash-marker"
    extra_env = {"FLIGHTDECK_CRASH_TEST_MARKER": str(marker)}
    catalog = contextlib.ExitStack()
    if warehouse == "ducklake":
        name = catalog.enter_context(scratch_database())
        extra_env |= {
            settings.WAREHOUSE: "ducklake",
            settings.DUCKLAKE_CATALOG: f"dbname={name} host={PG_HOST} port={PG_PORT} user={PG_USER}",
            settings.DUCKLAKE_DATA_PATH: str(data / "lake"),
        }

    with catalog:
        with production_stack(tmp_path, monkeypatch, extra_env) as stack:
            # The sensor bootstraps the reference data, then requests the day's run, which pauses in its
            # open transaction and tells us its pid: kill -9 it there.
            wait_until(marker.exists, timeout=300, interval=1, what="the load to reach its commit")
            with dg.DagsterInstance.from_config(str(stack.home)) as instance:
                second_day_waits_or_starts(instance, data, warehouse)
                os.kill(int(marker.read_text()), signal.SIGKILL)

                def retried_success():
                    runs = day_runs(instance, DAY)
                    done = [r for r in runs if r.is_finished]
                    return len(done) == 2 and len(runs) == 2 and runs

                runs = wait_until(
                    retried_success, timeout=400, interval=2, what="the crash to be detected and retried"
                )
                [second] = wait_until(
                    lambda: [r for r in day_runs(instance, SECOND_DAY) if r.is_finished],
                    timeout=300, interval=2, what="the second day's run to finish",
                )  # fmt: skip
                assert second.status == dg.DagsterRunStatus.SUCCESS
                retry, crashed = runs  # newest first
                assert crashed.status == dg.DagsterRunStatus.FAILURE
                assert retry.status == dg.DagsterRunStatus.SUCCESS
                assert retry.tags.get("dagster/parent_run_id") == crashed.run_id
                crash_events = instance.all_logs(crashed.run_id)
                messages = [e.message or "" for e in crash_events]
                assert any("exit code -9" in m or "signal 9" in m or "SIGKILL" in m for m in messages), (
                    messages[-8:]
                )

        con = (
            lake.connect(
                extra_env[settings.DUCKLAKE_CATALOG],
                extra_env[settings.DUCKLAKE_DATA_PATH],
                settings.duckdb_extension_dir(),
                read_only=True,
            )
            if warehouse == "ducklake"
            else duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
        )
        try:
            rows = con.execute(
                "SELECT count(*), count(DISTINCT (carrier, flight, origin)) FROM raw.flights WHERE flight_date = ?",
                [DAY],
            ).fetchone()
            assert rows == (expected_rows, expected_rows)  # none missing, none doubled
            # The killed load never committed: exactly one audited load, by the retry.
            assert con.execute(
                "SELECT count(*), min(run_id) FROM ops.load_audit WHERE partition_date = ?", [DAY]
            ).fetchone() == (1, retry.run_id)
            assert con.execute(
                "SELECT count(*) FROM marts.fct_flights WHERE flight_date = ?", [DAY]
            ).fetchone() == (expected_rows,)
            assert con.execute(
                "SELECT count(*) FROM raw.flights WHERE flight_date = ?", [SECOND_DAY]
            ).fetchone() == (len(second_day_lines) - 1,)
        finally:
            con.close()
